"""Batch scoring against a real `mlflow server`: the registered version's bundle, the service's code, chunk by chunk.

The project's own model is registered once on a server started for the module; the flights are real rows of
the test months, in the request's form, with bad rows planted among them.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flightdelay import batch, monitor, registry, settings
from flightdelay.core.windows import History
from flightdelay.io import dvc, tracking
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from tests.conftest import ROOT
from tests.e2e.conftest import register_model

# A registry server, a model registered and an MLflow run per test: minutes in all, so CI runs them.
pytestmark = pytest.mark.slow

ROWS = 2_400
NOW = pd.Timestamp("2026-11-30T05:30:00Z")


@dataclass(frozen=True)
class Registry:
    url: str
    production: registry.Version
    tampered: registry.Version


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, params: settings.Params) -> Iterator[Registry]:
    """The project's model registered twice on a real `mlflow server`: v1 as production, v2 with a false hash."""
    tmp = tmp_path_factory.mktemp("registry")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        with registry.connect(tmp) as url:
            model_sha = tracking.sha256(ROOT / params.paths.model)
            production = register_model(tmp, {"model_sha256": model_sha})
            registry.set_alias(production, "production")
            tampered = register_model(tmp, {"model_sha256": "0" * 64})
            yield Registry(url, production, tampered)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture
def server(served: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Each test against the module's server (the autouse fixture points MLflow at a per-test store)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", served.url)
    mlflow.set_tracking_uri(served.url)
    return served


@pytest.fixture(scope="module")
def flights(params: settings.Params) -> pd.DataFrame:
    """Real flights of the test months as the request's columns, optional fields missing where the data lacks them."""
    joined = read_parquet(ROOT / params.paths.joined)
    periods = PROBLEM.period(joined)
    latest = sorted(periods.unique())[-params.split.test_months :]
    return joined[periods.isin(latest)].head(ROWS).reset_index(drop=True)


def _requests(flights: pd.DataFrame) -> pd.DataFrame:
    return flights[list(PROBLEM.request_columns())]


def test_a_parquet_file_is_scored_chunk_by_chunk_with_the_pipelines_features(
    server: Registry, flights: pd.DataFrame, params: settings.Params, tmp_path: Path
) -> None:
    source = tmp_path / "flights.parquet"
    _requests(flights).to_parquet(source, index=False)
    whole = batch.run(source, tmp_path / "whole.parquet", server.production, chunk_rows=ROWS, progress=False, now=NOW)
    chunked = batch.run(
        source, tmp_path / "chunked.parquet", server.production, chunk_rows=333, progress=False, now=NOW
    )
    assert (whole.rows, chunked.rows) == (ROWS, ROWS)
    scored = pd.read_parquet(whole.output)
    # Chunking changes nothing, and a second run gives the same ids: labels joined once stay joined.
    pd.testing.assert_frame_equal(scored, pd.read_parquet(chunked.output))
    assert scored["request_id"].is_unique
    assert scored["request_id"].iloc[0] == f"{batch.id_prefix(source)}-000000000"
    # The service's path (request model, reference join, features) gives what the pipeline's does.
    ok = scored["error"].isna().to_numpy()
    assert ok.sum() > 0.9 * ROWS and whole.failed == ROWS - ok.sum()
    model = dvc.load_model(ROOT, params.paths.model)
    expected = model.predict_proba(PROBLEM.features_of(flights)[list(PROBLEM.features)])[:, 1]
    np.testing.assert_allclose(scored["delay_probability"].to_numpy()[ok], expected[ok], rtol=1e-9, atol=1e-12)
    threshold = float(scored["threshold"].iloc[0])
    assert (scored["delayed"][ok] == (scored["delay_probability"][ok] >= threshold)).all()
    assert set(scored["model_version"]) == {server.production.number}
    assert scored["scored_at"].iloc[0] == NOW
    # The rows the request model refuses say why, as the service's 422 would.
    assert scored["error"][~ok].str.contains(": ").all()


def test_on_a_dask_cluster_the_workers_score_the_chunks_and_the_output_is_the_same(
    server: Registry, flights: pd.DataFrame, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    source = tmp_path / "flights.csv"
    _requests(flights).to_csv(source, index=False)  # a file only this process reads: chunks go to the workers
    here = batch.run(source, tmp_path / "here.parquet", server.production, chunk_rows=500, progress=False, now=NOW)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        on_dask = settings.Engine(name="dask", address=cluster.scheduler_address)
        there = batch.run(
            source,
            tmp_path / "there.parquet",
            server.production,
            chunk_rows=500,
            progress=False,
            now=NOW,
            engine=on_dask,
        )
        scored_by_workers = cluster.scheduler.task_prefixes["scored_on_worker"].state_counts["memory"]
    assert (there.rows, there.failed) == (here.rows, here.failed)
    pd.testing.assert_frame_equal(pd.read_parquet(there.output), pd.read_parquet(here.output))
    assert scored_by_workers == -(-ROWS // 500)  # every chunk (batch._scored_on_worker, as dask names it)
    # A version whose model fails its hash is refused here, before any worker is asked (the cluster is gone).
    with pytest.raises(batch.BatchError, match="hashes to"):
        batch.run(source, tmp_path / "no.parquet", server.tampered, progress=False, engine=on_dask)


def test_a_csv_file_scores_as_its_parquet_twin_and_bad_rows_stay_their_own(
    server: Registry, flights: pd.DataFrame, tmp_path: Path
) -> None:
    rows = _requests(flights).head(300).copy()
    rows["request_id"] = [f"nov-{i}" for i in range(len(rows))]
    rows.loc[5, "month"] = 13
    rows.loc[6, "carrier"] = "ZZ"
    rows.loc[7, "distance"] = None  # required
    source = tmp_path / "flights.csv"
    rows.to_csv(source, index=False)
    twin = tmp_path / "flights.parquet"
    rows.iloc[[i for i in range(len(rows)) if i not in (5, 6, 7)]].to_parquet(twin, index=False)
    done = batch.run(source, tmp_path / "scored.csv", server.production, chunk_rows=64, progress=False, now=NOW)
    assert (done.rows, done.failed) == (300, 3)
    scored = pd.read_csv(done.output)
    errors = scored.set_index("request_id")["error"]
    assert errors["nov-5"].startswith("month: Input should be less than or equal to 12")
    assert errors["nov-6"] == "carrier: 'ZZ' is not on file (the model knows no such carrier)"
    assert errors["nov-7"].startswith("distance: ")
    assert scored.set_index("request_id").loc[["nov-5", "nov-6", "nov-7"], "delay_probability"].isna().all()
    parquet = batch.run(twin, tmp_path / "twin.parquet", server.production, progress=False, now=NOW)
    both = scored.dropna(subset=["delay_probability"]).set_index("request_id")["delay_probability"]
    np.testing.assert_allclose(both, pd.read_parquet(parquet.output).set_index("request_id")["delay_probability"])


def test_the_monitor_reads_the_output_and_joins_the_labels_that_arrive_later(
    server: Registry, flights: pd.DataFrame, params: settings.Params, tmp_path: Path
) -> None:
    rows = _requests(flights).copy()
    rows["request_id"] = [f"flight-{i}" for i in range(len(rows))]
    source = tmp_path / "flights.parquet"
    rows.to_parquet(source, index=False)
    done = batch.run(source, tmp_path / "scored.parquet", server.production, progress=False, now=NOW)
    arrivals = tmp_path / "arrivals.csv"
    pd.DataFrame({"request_id": rows["request_id"], PROBLEM.outcome: flights[PROBLEM.outcome]}).to_csv(
        arrivals, index=False
    )
    window = monitor.log_window(ROOT, params, done.output, arrivals)
    assert len(window.features) == done.rows - done.failed
    assert window.labels is not None and window.labels.notna().all()
    assert window.quality["skipped_lines"] == done.failed
    assert window.key == "2026-11-30T05:30:00Z/2026-11-30T05:30:00Z"
    result = monitor.compare(monitor.reference(ROOT, params), window, params, _baseline(params))
    assert result.performance is not None and result.performance["labelled"] == len(window.features)
    judged = monitor.judge(result, window, History(), model="m", rules=params.monitor, now=NOW)
    assert [r.name for r in judged.records] == ["prediction log scored.parquet"]


def _baseline(params: settings.Params) -> dict[str, object]:
    import json

    return dict(json.loads((ROOT / params.paths.metrics).read_text()))


def test_bad_input_is_named_and_the_existing_output_is_left_whole(
    server: Registry, flights: pd.DataFrame, tmp_path: Path
) -> None:
    output = tmp_path / "scored.parquet"
    output.write_bytes(b"yesterday's scores")

    def refused(source: Path, match: str, version: registry.Version = server.production, out: Path = output) -> None:
        with pytest.raises(batch.BatchError, match=match):
            batch.run(source, out, version, progress=False)
        assert output.read_bytes() == b"yesterday's scores"
        assert sorted(p.name for p in tmp_path.glob(".scored*")) == []  # no staged file left behind

    refused(tmp_path / "missing.csv", r"--input .*missing.csv: no such file")
    text = tmp_path / "flights.txt"
    text.write_text("carrier\nUA\n")
    refused(text, r"expected a .csv or .parquet file, not '.txt'")
    partial = tmp_path / "partial.csv"
    _requests(flights).drop(columns=["carrier", "distance"]).head(5).to_csv(partial, index=False)
    refused(partial, r"the request columns \['carrier', 'distance'\] are missing")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused(empty, "no header and no rows|unreadable")
    twice = _requests(flights).head(50).copy()
    twice["request_id"] = ["same"] * 50
    repeated = tmp_path / "repeated.parquet"
    twice.to_parquet(repeated, index=False)
    refused(repeated, "request ids repeat")
    good = tmp_path / "good.parquet"
    _requests(flights).head(20).to_parquet(good, index=False)
    refused(good, "hashes to .* but the version records model_sha256=0000", version=server.tampered)
    refused(good, "is the input", out=good)


def test_the_command_resolves_the_alias_or_the_version_and_names_what_is_missing(
    server: Registry, flights: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "flights.parquet"
    _requests(flights).head(500).to_parquet(source, index=False)
    env = os.environ | {"MLFLOW_TRACKING_URI": server.url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flightdelay", "batch-predict", "--input", str(source), *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)

    done = cli("--output", str(tmp_path / "scored.parquet"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert f"scoring {source} with {server.production.label} (aliases: production)" in done.stdout
    assert f"flights scored by {server.production.label}" in done.stdout
    missing = cli("--output", str(tmp_path / "other.parquet"), "--version", "99")
    assert missing.returncode == 1 and "--version 99: flight-delay has no version 99" in missing.stderr
    # The other refusals of the choice, in process (each command costs its imports and a registry round trip).
    with pytest.raises(batch.BatchError, match="--alias challenger: no version of flight-delay holds it"):
        batch.resolve(None, "challenger")
    with pytest.raises(batch.BatchError, match="give --version or --alias, not both"):
        batch.resolve("1", "production")
    assert batch.resolve("1", None).number == batch.resolve(None, None).number == server.production.number
    assert not (tmp_path / "other.parquet").exists()


def test_the_flights_can_be_fetched_from_a_url_as_dvc_reads_it(
    server: Registry, flights: pd.DataFrame, tmp_path: Path
) -> None:
    shared = tmp_path / "bucket"
    shared.mkdir()
    _requests(flights).head(200).to_parquet(shared / "flights.parquet", index=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{web.server_address[1]}"
        with tempfile.TemporaryDirectory() as into:
            fetched = batch.fetch(f"{base}/flights.parquet", Path(into))
            done = batch.run(fetched, tmp_path / "scored.parquet", server.production, progress=False)
            assert done.rows == 200
            with pytest.raises(
                batch.BatchError, match=r"--input http://127.0.0.1:\d+/nothing.parquet: could not fetch"
            ):
                batch.fetch(f"{base}/nothing.parquet", Path(into))
        web.shutdown()
    with pytest.raises(batch.BatchError, match="the URL names no file"):
        batch.fetch("s3://bucket/", tmp_path)
