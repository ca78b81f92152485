"""A second problem through the same machinery: Seattle's rain (examples/seattle_rain) in place of the flights.

In a fresh clone of the template, the adoption block of examples/seattle_rain/README.md runs as written; then
the pipeline, a params PR with its report, the release (a real `mlflow server`, `bentoml build`, the built Bento
served and smoke-tested with the golden requests) and the monitor run on the new problem, and no machinery file
has changed.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import Project, clone, clone_sharing_cache, clone_template, environment
from tests.readme import blocks

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "seattle_rain"
ADOPT_MARKER = "<!-- test_second_problem: adopt -->"
STAGES = ("ingest", "validate", "featurize", "train", "evaluate")
# What adopting the example may change, and nothing else: the problem and its three kinds of tests (unit, data,
# model: the release runs `pytest tests/model` before it registers), its params, its data's record and what
# `dvc repro` writes.
ADOPTED = re.compile(
    r"^(src/flightdelay/problem/|tests/(problem|model|data)/|reports/|data/|params\.yaml$|data\.dvc$|dvc\.lock$)"
)
HELD_BACK_MONTH = "2015-11"  # recorded: 2012-01 to 2015-06


def adoption_block() -> str:
    """The README's adoption commands, exactly as a user copies them."""
    readme = EXAMPLE / "README.md"
    lines = readme.read_text().splitlines()
    (block,) = [b for b in blocks(readme) if lines[b.line - 2].strip() == ADOPT_MARKER]
    assert block.language == "bash"
    return block.text


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str, str]:
    """The template with the example adopted and committed: the project, the template's commit, the block's output.

    No MLFLOW_TRACKING_URI: the stages log to the project's own store, and the release starts its own
    `mlflow server` on it, as for a user.
    """
    tmp = tmp_path_factory.mktemp("second-problem")
    env = environment(tmp) | {"BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI")
    project = clone_template(tmp / "repo", env)
    template = project.git("rev-parse", "HEAD").strip()
    done = project.run("bash", "-euo", "pipefail", "-c", adoption_block())
    return project, template, done.stdout + done.stderr


def problem_features(project: Project) -> list[str]:
    """The features of the problem the project's code holds (its own src, not this checkout's)."""
    code = "import json; from flightdelay.problem import PROBLEM; print(json.dumps(list(PROBLEM.features)))"
    return list(json.loads(project.run(sys.executable, "-c", code).stdout))


def test_adopting_changes_only_the_problem_its_params_and_its_data(adopted: tuple[Project, str, str]) -> None:
    project, template, _ = adopted
    changed = project.git("diff", "--name-only", template, "HEAD").split()
    assert changed, "the adoption committed nothing"
    assert [path for path in changed if not ADOPTED.match(path)] == []
    assert {"src/flightdelay/problem/join.py", "data.dvc", "params.yaml"} <= set(changed)
    assert project.git("status", "--porcelain") == ""
    assert "rain_tomorrow" not in " ".join(problem_features(project))  # the label is not a feature
    assert {"weather", "season", "rain_days_recent"} <= set(problem_features(project))


def test_the_adopted_project_passes_its_static_checks_and_the_problems_tests(
    adopted: tuple[Project, str, str],
) -> None:
    """The problem is code of the project like the rest: linted, strictly typed (mypy's config: src/), tested.

    In the project's own environment (`uv sync`, offline from the warm cache): the test session's has no linters.
    """
    project, _, _ = adopted
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: the nox sessions link the pinned one (run through `nox -s tests`)")
    # Not nox's UV_PROJECT_ENVIRONMENT: uv would sync the test session's venv instead of making the project's.
    dropped = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "PYTHONPATH"}
    own = Project(project.path, {k: v for k, v in project.env.items() if k not in dropped} | {"UV_OFFLINE": "1"})
    own.run(uv, "sync", "--locked", "--quiet")
    tools = project.path / ".venv" / "bin"
    owned = ("src", "tests/problem", "tests/model", "tests/data")
    own.run(str(tools / "ruff"), "check", *owned)
    own.run(str(tools / "ruff"), "format", "--check", *owned)
    own.run(str(tools / "mypy"))
    done = own.run(str(tools / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/problem", "tests/data")
    assert " passed" in done.stdout and " failed" not in done.stdout


def test_the_pipeline_runs_every_stage_on_the_new_problem(adopted: tuple[Project, str, str]) -> None:
    project, _, output = adopted
    assert "wrote the sample (42 months, 2012-01 to 2015-06) into data/raw and recorded it in data.dvc" in output
    for stage in STAGES:
        assert f"Running stage '{stage}'" in output
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    metrics = json.loads((project.path / "reports/metrics.json").read_text())
    assert set(metrics) == {"periods", "threshold", "test", "valid"}
    assert metrics["periods"] == {"test": 201506, "valid": 201412}
    assert {"roc_auc", "pr_auc", "log_loss", "brier", "positive_rate", "expected_cost"} <= set(metrics["test"])
    assert metrics["test"]["rows"] == 181 - 1  # January to June 2015, less 30 June, whose next day is held back
    assert metrics["test"]["roc_auc"] >= params["gate"]["minimum"]["test.roc_auc"] + 0.05
    assert metrics["test"]["pr_auc"] >= params["gate"]["minimum"]["test.pr_auc"] + 0.05
    slices = json.loads((project.path / "reports/slices.json").read_text())
    assert {"season", "weather"} <= set(slices)
    # Reproducing again changes nothing: every stage is recorded.
    assert "Data and pipelines are up to date." in project.dvc("status").stdout


def test_a_fresh_clone_gets_the_same_sample_with_get_data(adopted: tuple[Project, str, str], tmp_path: Path) -> None:
    project, _, _ = adopted
    fresh = clone(project.path, tmp_path / "fresh", environment(tmp_path))
    said = fresh.cli("get-data").stdout
    assert "wrote the sample (42 months) into data/raw; it matches data.dvc" in said
    assert fresh.dvc("status", "data.dvc").stdout.strip() == "Data and pipelines are up to date."


def test_a_params_pr_gets_its_report_and_verdict(adopted: tuple[Project, str, str], tmp_path: Path) -> None:
    project, _, _ = adopted
    pr = clone_sharing_cache(project, tmp_path)
    base = pr.git("rev-parse", "HEAD").strip()
    pr.git("checkout", "--quiet", "-b", "pr")
    params = pr.path / "params.yaml"
    assert params.read_text().count("max_iter: 300") == 1
    params.write_text(params.read_text().replace("max_iter: 300", "max_iter: 150"))
    pr.git("commit", "--quiet", "-am", "fewer trees")
    # As `nox -s pr-report` does; the author commits the reproduced outputs with the change.
    pr.cli("repro", "--record=build/pr-report/pipeline.json")
    pr.git("add", "dvc.lock", "reports")
    pr.git("commit", "--quiet", "-m", "dvc repro")
    done = pr.cli("pr-report", "--out=build/pr-report", "--base=origin/main", check=False)
    report = (pr.path / "build/pr-report/report.md").read_text()
    assert done.returncode == 0, report
    assert report.startswith("<!-- flightdelay:pr-report -->\n## ✅ Quality gate passed")
    assert f"against base `origin/main` (`{base[:10]}`)" in report
    assert "| train.hist_gradient_boosting.max_iter | 300 | 150 |" in report
    base_metrics = json.loads(pr.git("show", "origin/main:reports/metrics.json"))
    pr_metrics = json.loads((pr.path / "reports/metrics.json").read_text())
    row = next(line for line in report.splitlines() if line.startswith("| test.roc_auc |"))
    _, before, after, *_ = (cell.strip() for cell in row.strip("|").split("|"))
    assert float(before) == pytest.approx(base_metrics["test"]["roc_auc"], abs=1e-4)
    assert float(after) == pytest.approx(pr_metrics["test"]["roc_auc"], abs=1e-4)
    assert "| season spring |" in report  # the problem's own slices
    assert "The raw data is unchanged" in report
    pipeline = json.loads((pr.path / "build/pr-report/pipeline.json").read_text())
    assert pipeline["stages"] == dict.fromkeys(STAGES[:3], "skipped") | dict.fromkeys(STAGES[3:], "ran")


def test_the_release_registers_builds_and_smoke_tests_the_bento(adopted: tuple[Project, str, str]) -> None:
    project, _, _ = adopted
    head = project.git("rev-parse", "HEAD").strip()
    done = project.cli("release", "--commit", check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "quality gate passed" in output
    assert "model tests passed" in output
    assert "registered flight-delay v1 (alias candidate)" in output
    assert f"built Bento flightdelay-service:v1-{head[:8]} from flight-delay v1" in output
    assert "answered 25 golden requests as recorded" in output
    assert "alias staging -> v1" in output
    assert project.git("log", "-1", "--format=%s").startswith("deploy(staging): flight-delay v1")


def test_the_monitor_reports_drift_over_the_new_features(adopted: tuple[Project, str, str], tmp_path: Path) -> None:
    project, _, _ = adopted
    watcher = clone_sharing_cache(project, tmp_path)
    out = tmp_path / "monitor"
    done = watcher.cli("monitor", f"--month={HELD_BACK_MONTH}", f"--out={out}", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["window"] == f"days of {HELD_BACK_MONTH}"
    assert summary["rows"] == 30
    assert sorted(f["column"] for f in summary["features"]) == sorted(problem_features(watcher))
    assert summary["quality"]["status"] == "passed"
    drifted = {f["column"] for f in summary["features"] if f["drifted"]}
    assert "season" in drifted  # November against a year-round reference
    assert summary["performance"]["labelled"] == 30  # a month of the sample carries its labels
    assert "roc_auc" in summary["performance"]
