"""The pipeline through real git and dvc: what a user and a pull request do to it."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.e2e.conftest import Project, clone_template, environment

pytestmark = pytest.mark.slow

STAGES = ("ingest", "validate", "featurize", "train", "evaluate")


def ran(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def test_reproduced_outputs_and_a_clean_status(scenario: Project) -> None:
    metrics = json.loads((scenario.path / "reports/metrics.json").read_text())
    assert {"threshold", "test", "valid"} <= metrics.keys()
    assert 0.5 < metrics["test"]["roc_auc"] < 1.0
    assert (scenario.path / "models/model.joblib").is_file()
    assert scenario.dvc("status", "--quiet", check=False).returncode == 0
    again = scenario.dvc("repro")
    assert ran(again.stdout) == set()
    assert scenario.git("status", "--porcelain") == ""


def test_a_training_param_reruns_only_train_and_evaluate(scenario: Project) -> None:
    params = scenario.path / "params.yaml"
    params.write_text(params.read_text().replace("max_iter: 300", "max_iter: 50"))
    done = scenario.dvc("repro")
    assert ran(done.stdout) == {"train", "evaluate"}
    diff = scenario.dvc("metrics", "diff", "--json").stdout
    assert "test.roc_auc" in diff


def test_adding_a_month_moves_the_test_month(scenario: Project) -> None:
    before = yaml.safe_load((scenario.path / "data.dvc").read_text())["outs"]
    added = scenario.cli("add-month", "4")
    assert "data/raw/flights/2013-04.csv" in added.stdout
    after = yaml.safe_load((scenario.path / "data.dvc").read_text())["outs"]
    assert [o["path"] for o in after] == [o["path"] for o in before] == ["data/raw/flights", "data/raw/weather"]
    assert [o["nfiles"] for o in after] == [o["nfiles"] + 1 for o in before]  # a flights and a weather file
    assert all(a["md5"] != b["md5"] for a, b in zip(after, before, strict=True))
    scenario.dvc("repro")
    test = pd.read_parquet(scenario.path / "data/processed/test.parquet")
    assert test["month"].unique().tolist() == [4]
    again = scenario.cli("add-month", "4", check=False)
    assert again.returncode == 1
    assert "already in data/raw" in again.stderr


def test_truncated_batch_fails_ingest_and_names_the_file(scenario: Project) -> None:
    batch = scenario.path / "data/raw/flights/2013-03.csv"
    data = batch.read_bytes()
    batch.unlink()  # the cache links the file; replace it rather than write through the link
    batch.write_bytes(data[: len(data) - 50])
    done = scenario.dvc("repro", check=False)
    assert done.returncode != 0
    assert "2013-03.csv: cannot be parsed as CSV (truncated or malformed?)" in done.stderr + done.stdout
    assert ran(done.stdout) == {"ingest"}


def test_out_of_range_value_fails_validate_with_a_report(scenario: Project) -> None:
    batch = scenario.path / "data/raw/flights/2013-02.csv"
    lines = batch.read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[15] = "-719"  # distance
    lines[1] = ",".join(fields)
    batch.unlink()
    batch.write_text("".join(lines))
    done = scenario.dvc("repro", check=False)
    assert done.returncode != 0
    assert "column 'distance', check greater_than(0): 1 failing (e.g. -719.0)" in done.stderr + done.stdout
    report = json.loads((scenario.path / "reports/validation.json").read_text())
    assert report["status"] == "failed"
    assert ran(done.stdout) == {"ingest", "validate"}


def test_seed_refuses_data_that_does_not_match(scenario: Project) -> None:
    pointer = scenario.path / "data.dvc"
    pointer.write_text(
        pointer.read_text().replace(yaml.safe_load(pointer.read_text())["outs"][0]["md5"], "0" * 32 + ".dir")
    )
    scenario.run("rm", "-rf", "data/raw/flights", "data/raw/weather")
    done = scenario.cli("get-data", check=False)
    assert done.returncode == 1
    assert "but data.dvc records 00000000000000000000000000000000.dir" in done.stderr
    assert not (scenario.path / "data/raw/flights").exists()
    assert not (scenario.path / "data/raw/weather").exists()
    assert scenario.git("status", "--porcelain") == " M data.dvc\n"  # only the test's own edit


def test_fresh_clone_reproduces_the_committed_lock(tmp_path: Path) -> None:
    """The Quickstart's promise: same data, params and lockfile give the same hashes."""
    project = clone_template(tmp_path / "repo", environment(tmp_path))
    got = project.cli("get-data")
    assert "matches data.dvc" in got.stdout
    done = project.dvc("repro")
    assert ran(done.stdout) == {"ingest", "featurize", "train"}  # not in git: the model and the data it learns from
    assert project.git("status", "--porcelain") == ""

    # The run the user opens first: evaluate was skipped, its committed outputs are this model's evaluation.
    logged = project.cli("log-evaluation")
    assert "logged the evaluation recorded in dvc.lock" in logged.stdout
    again = project.cli("log-evaluation")
    assert "already has its evaluation" in again.stdout
    recorded = json.loads((project.path / "reports/metrics.json").read_text())
    client = mlflow.MlflowClient(project.env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs(client.get_experiment_by_name("flightdelay").experiment_id)
    assert run.data.metrics["test_roc_auc"] == recorded["test"]["roc_auc"]
    assert run.data.metrics["threshold"] == recorded["threshold"]
    assert run.data.metrics["train_rows"] > 0


def test_unreachable_remote_falls_back_to_the_sample(scenario: Project, tmp_path: Path) -> None:
    """As in a fork's CI: the remote is configured, its credentials are not there."""
    scenario.dvc("remote", "add", "--default", "storage", str(tmp_path / "no-such-remote"))
    scenario.dvc("cache", "dir", "--local", str(tmp_path / "empty-cache"))
    scenario.run("rm", "-rf", "data/raw")
    got = scenario.cli("get-data")
    assert "dvc pull from 'storage' failed, so the sample stands in" in got.stdout
    assert scenario.dvc("status", "--quiet", "data.dvc", check=False).returncode == 0
