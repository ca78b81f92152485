"""batch-predict.yml, executed by act: off until configured; a dispatch scores a URL's flights with production."""

from __future__ import annotations

import functools
import http.server
import io
import threading
from pathlib import Path

import pandas as pd
import pytest

from flightdelay import registry, settings
from flightdelay.io import tracking as lineage
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from tests.act import REPOSITORY, Act
from tests.conftest import ROOT
from tests.e2e.conftest import clone_template, environment, push_to_origin, register_model
from tests.fake_github import serve

pytestmark = pytest.mark.slow

REPO = {"full_name": REPOSITORY, "default_branch": "main"}


def test_the_schedule_waits_for_its_input_and_a_dispatch_scores_a_url_with_production(
    tmp_path: Path, tracking: str
) -> None:
    project = clone_template(tmp_path / "repo", environment(tmp_path))
    push_to_origin(project, tmp_path, "the template")
    paths = settings.load(ROOT / "params.yaml").paths
    version = register_model(tmp_path, {"model_sha256": lineage.sha256(ROOT / paths.model)})
    registry.set_alias(version, "production")
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    joined = read_parquet(ROOT / paths.joined).tail(1_000)  # the latest flights, as the request's columns
    joined[list(PROBLEM.request_columns())].to_parquet(bucket / "flights.parquet", index=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bucket))
    variables = {"MLFLOW_TRACKING_URI": tracking}
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as web, serve() as (api, _):
        threading.Thread(target=web.serve_forever, daemon=True).start()
        act = Act.prepare(project.path, tmp_path, api)
        scheduled = act.run("schedule", "batch-predict.yml", {"schedule": "30 5 * * *", "repository": REPO}, run_id=1)
        assert scheduled.returncode == 0, scheduled.output[-8000:]
        assert "Score the flights" not in scheduled.output  # vars.BATCH_INPUT_URL unset: the job does not run

        url = f"http://127.0.0.1:{web.server_address[1]}/flights.parquet"
        event = {"inputs": {"input": url, "alias": "production", "version": ""}, "ref": "refs/heads/main"}
        run = act.run(
            "workflow_dispatch", "batch-predict.yml", event | {"repository": REPO}, run_id=2, variables=variables
        )
        web.shutdown()
    assert run.returncode == 0, run.output[-8000:]
    assert f"scoring {url} with {version.label} (aliases: candidate, production)" in run.output, run.output[-8000:]
    assert f"1,000 flights scored by {version.label}" in run.output
    scores = pd.read_parquet(io.BytesIO(run.artifact(2, "scores")["scores.parquet"]))
    assert len(scores) == 1_000 and set(scores["model_version"]) == {version.number}
    assert scores["request_id"].str.startswith("batch-").all()
