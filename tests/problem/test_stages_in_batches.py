"""Ingest and featurize a batch at a time write the whole table's files, byte for byte; train samples past a size."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from flightdelay import settings
from flightdelay.core.split import split_by_month
from flightdelay.io import engines
from flightdelay.io.bento import free_port
from flightdelay.io.files import read_csvs, read_parquet, write_parquet
from flightdelay.problem import PROBLEM, sample, schemas
from flightdelay.stages.featurize import featurize
from flightdelay.stages.ingest import ingest
from flightdelay.stages.train import training_rows
from flightdelay.stages.validate import validate

PARTS = ("train", "valid", "test")


def _params(params: settings.Params, root: Path, raw: Path) -> settings.Params:
    paths = params.paths.model_copy(
        update={"raw": raw, "joined": root / "joined.parquet"} | {part: root / f"{part}.parquet" for part in PARTS}
    )
    return params.model_copy(update={"paths": paths})


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    sample.write_sample(raw, [2, 3, 4, 5])
    for name in PROBLEM.reference_files:
        shutil.copyfile(sample.package_data_dir() / name, raw / name)
    return raw


@pytest.fixture(scope="module")
def batched(raw: Path, params: settings.Params, tmp_path_factory: pytest.TempPathFactory) -> settings.Params:
    batched = _params(params, tmp_path_factory.mktemp("batched"), raw)
    ingest(batched)
    featurize(batched, batch_rows=10_000)  # a month is ~28,000 rows: batches cut months and parts
    return batched


def test_ingest_then_featurize_in_batches_write_the_whole_tables_files(
    raw: Path, batched: settings.Params, params: settings.Params, tmp_path: Path
) -> None:
    # The whole table at once, as the stages did before they streamed.
    whole = _params(params, tmp_path / "whole", raw)
    flights = read_csvs(sorted((raw / "flights").glob("*.csv")), schemas.RawFlights)
    weather = read_csvs(sorted((raw / "weather").glob("*.csv")), schemas.RawWeather)
    write_parquet(whole.paths.joined, PROBLEM._join(raw, flights, weather, params.ingest))
    rows = PROBLEM.featurize(read_parquet(whole.paths.joined), params.label)
    sizes = params.split
    split = split_by_month(rows, PROBLEM.period(rows), sizes.valid_months, sizes.test_months, sizes.min_train_months)
    for part in PARTS:
        write_parquet(getattr(whole.paths, part), getattr(split, part))

    for path in ("joined", *PARTS):
        assert getattr(batched.paths, path).read_bytes() == getattr(whole.paths, path).read_bytes(), path
    assert [sorted(PROBLEM.period(read_parquet(getattr(batched.paths, p))).unique()) for p in PARTS] == [
        [201302, 201303],
        [201304],
        [201305],
    ]


def _keys(rows: pd.DataFrame) -> list[tuple[object, ...]]:
    return list(rows[list(PROBLEM.keys)].itertuples(index=False, name=None))


def test_past_max_rows_training_takes_a_seeded_sample_by_key(batched: settings.Params, tmp_path: Path) -> None:
    path = batched.paths.train
    every = read_parquet(path)
    assert training_rows(path, None, 42).equals(every)
    assert training_rows(path, len(every), 42).equals(every)

    sample = training_rows(path, 5_000, 42)
    assert len(sample) == 5_000
    positions = every.reset_index().merge(sample, on=list(every.columns))["index"]
    assert len(positions) == 5_000 and positions.is_monotonic_increasing  # rows of the file, in its order
    # The same rows however the file holds them: shuffled, in small row groups.
    shuffled = tmp_path / "shuffled.parquet"
    every.sample(frac=1.0, random_state=0).to_parquet(shuffled, index=False, row_group_size=7_000)
    assert set(_keys(training_rows(shuffled, 5_000, 42))) == set(_keys(sample))
    # Another seed, another sample: about 5,000 x 5,000 / all of them in common.
    other = set(_keys(training_rows(path, 5_000, 7)))
    assert len(other & set(_keys(sample))) < 2 * 5_000 * 5_000 / len(every)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A real dask.distributed cluster of two worker processes, on loopback, as a team's scheduler would be."""
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


def _tasks_run(cluster: LocalCluster) -> int:
    """How many batches the cluster's workers have read and processed (``engines._apply``, named by dask)."""
    prefix = cluster.scheduler.task_prefixes.get("apply")
    return 0 if prefix is None else int(prefix.state_counts["memory"])


def test_featurize_on_a_dask_cluster_writes_the_same_files(
    batched: settings.Params, cluster: LocalCluster, tmp_path: Path
) -> None:
    paths = batched.paths.model_copy(update={part: tmp_path / f"{part}.parquet" for part in PARTS})
    on_dask = batched.model_copy(
        update={"paths": paths, "engine": settings.Engine(name="dask", address=cluster.scheduler_address)}
    )

    before = _tasks_run(cluster)

    featurize(on_dask, batch_rows=10_000)

    for part in PARTS:
        assert getattr(on_dask.paths, part).read_bytes() == getattr(batched.paths, part).read_bytes(), part
    # The batches were read and featurized by the cluster's workers, each on its own share.
    ran = _tasks_run(cluster) - before
    assert ran == 2 * len(engines.batch_bounds(batched.paths.joined, 10_000))  # the months, then the parts


def test_an_unreachable_scheduler_is_named(batched: settings.Params, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "CONNECT_SECONDS", 2)
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    on_dask = batched.model_copy(update={"engine": settings.Engine(name="dask", address=nowhere)})
    with pytest.raises(engines.EngineError, match=f"engine.address {nowhere}: no Dask scheduler answers there"):
        featurize(on_dask)


def test_validate_on_a_dask_cluster_reports_what_it_reports_in_process(
    batched: settings.Params, cluster: LocalCluster, tmp_path: Path
) -> None:
    reports = {}
    before = _tasks_run(cluster)
    for name, address in (("pandas", None), ("dask", cluster.scheduler_address)):
        paths = batched.paths.model_copy(update={"validation_report": tmp_path / f"{name}.json"})
        on = batched.model_copy(update={"paths": paths, "engine": settings.Engine(name=name, address=address)})
        validate(on)
        reports[name] = paths.validation_report.read_text()
    assert reports["dask"] == reports["pandas"]
    assert json.loads(reports["dask"])["warnings"]  # the sample's soft failures, counted on the workers
    assert _tasks_run(cluster) == before + 1  # one batch: the sample's months are less than a row group
