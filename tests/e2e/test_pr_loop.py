"""The pull-request loop end to end: branch, change, reproduce, report, gate, on real git and dvc."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from flightdelay.problem import PROBLEM
from tests.e2e.conftest import Project, clone, clone_sharing_cache, environment, lower_gate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def main_branch(reduced: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The reduced template with a gate its three months can meet (the real gate is for the full data)."""
    project = clone_sharing_cache(reduced, tmp_path_factory.mktemp("pr-main"))
    lower_gate(project)
    project.git("commit", "--quiet", "-am", "gate for the reduced sample")
    return project


@pytest.fixture
def repo(main_branch: Project, tmp_path: Path) -> Project:
    return clone_sharing_cache(main_branch, tmp_path)


def open_pr(project: Project, change: Callable[[Path], None], message: str) -> None:
    project.git("checkout", "--quiet", "-b", "pr")
    change(project.path)
    project.git("add", "-A")
    project.git("commit", "--quiet", "-m", message)


def report(project: Project, *, commit_outputs: bool = True) -> tuple[int, str, dict[str, object]]:
    """Reproduce as CI does, then report. The author commits the reproduced outputs (``dvc.lock``, ``reports/``)
    with the change; reproduction is deterministic, so committing CI's own reproduction stands for that."""
    project.cli("repro", check=False)
    if commit_outputs and project.git("status", "--porcelain", "--", "dvc.lock", "reports"):
        project.git("add", "dvc.lock", "reports")
        project.git("commit", "--quiet", "-m", "dvc repro")
    done = project.cli("pr-report", "--base", "origin/main", check=False)
    pipeline = json.loads((project.path / "build/pr-report/pipeline.json").read_text())
    written = (project.path / "build/pr-report/report.md").read_text()
    assert written == done.stdout.rstrip("\n") + "\n"
    return done.returncode, written, pipeline


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def metric_row(text: str, metric: str) -> list[str]:
    row = next(line for line in text.splitlines() if line.startswith(f"| {metric} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_params_pr(repo: Project) -> None:
    open_pr(repo, lambda p: edit(p / "params.yaml", "max_iter: 300", "max_iter: 150"), "fewer trees")
    code, text, pipeline = report(repo)
    assert code == 0, text
    assert text.startswith("<!-- flightdelay:pr-report -->\n## ✅ Quality gate passed")
    assert "| train.hist_gradient_boosting.max_iter | 300 | 150 |" in text
    assert pipeline["stages"] == {
        "ingest": "skipped",
        "validate": "skipped",
        "featurize": "skipped",
        "train": "ran",
        "evaluate": "ran",
    }
    base_metrics = json.loads(repo.git("show", "origin/main:reports/metrics.json"))
    pr_metrics = json.loads((repo.path / "reports/metrics.json").read_text())
    _, base, pr, change, judged = metric_row(text, "test.roc_auc")
    assert float(base) == pytest.approx(base_metrics["test"]["roc_auc"], abs=1e-4)
    assert float(pr) == pytest.approx(pr_metrics["test"]["roc_auc"], abs=1e-4)
    delta = pr_metrics["test"]["roc_auc"] - base_metrics["test"]["roc_auc"]
    assert float(change) == pytest.approx(delta, abs=2e-4)
    assert judged == ("🟢 better" if delta > 0 else "🔴 worse")
    assert "The raw data is unchanged" in text
    assert (repo.path / "build/pr-report/plots/roc.png").stat().st_size > 1000


def test_data_pr_in_a_fresh_clone(main_branch: Project, tmp_path: Path) -> None:
    """A new month, reported from a clone with an empty DVC cache, as CI in a fork sees it."""
    author = clone_sharing_cache(main_branch, tmp_path / "author")
    author.git("checkout", "--quiet", "-b", "pr")
    author.cli("add-month", "4")
    author.git("commit", "--quiet", "-am", "Add April")
    author.git("push", "--quiet", "origin", "pr")

    ci = clone(main_branch.path, tmp_path / "ci", environment(tmp_path))
    ci.git("checkout", "--quiet", "pr")
    assert "matches data.dvc" in ci.cli("get-data").stdout
    code, text, pipeline = report(ci)
    april_flights = len((ci.path / "data/raw/flights/2013-04.csv").read_text().splitlines()) - 1
    assert f"| flights/2013-04.csv | added | — | {april_flights:,} |" in text
    assert "| weather/2013-04.csv | added | — |" in text
    assert "`data.dvc` changed: 9 → 11 files" in text
    assert re.search(r"- Test month: 2013-03, [\d,]+ rows in the base → 2013-04, [\d,]+ rows in the PR", text)
    # No remote and an empty cache: the base's model is nowhere, so no rule compares March with April.
    assert "- regression rules **not applied**: the test rows moved and the base's model is not available" in text
    assert "got worse by" not in text
    assert pipeline["stages"]["ingest"] == "ran"
    assert code in (0, 1)  # the verdict depends on April's floors; the report is what this test checks


def test_data_pr_scores_the_base_model_on_the_prs_test_rows(repo: Project) -> None:
    """Like with like: the regression rules compare the base's model and the PR's on the same flights."""
    repo.git("checkout", "--quiet", "-b", "pr")
    repo.cli("add-month", "4")
    repo.git("commit", "--quiet", "-am", "Add April")
    _, text, _ = report(repo)
    assert "- regression rules: the base's model and the PR's model, scored on the same (the PR's) test rows" in text
    assert "the base column is **the base's model scored on the PR's test rows**" in text

    # The base column, computed here from main's recorded model on the PR's April rows.
    lock = yaml.safe_load(repo.git("show", "origin/main:dvc.lock"))
    (model_md5,) = [o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.joblib"]
    cache = Path(repo.dvc("cache", "dir").stdout.strip())
    model = joblib.load(cache / "files" / "md5" / model_md5[:2] / model_md5[2:])
    test = pd.read_parquet(repo.path / "data/processed/test.parquet")
    expected = roc_auc_score(test[PROBLEM.label], model.predict_proba(test[list(PROBLEM.features)])[:, 1])
    base, pr, *_ = metric_row(text, "test.roc_auc")[1:]
    assert base == f"{expected:.4f}"
    assert pr == f"{json.loads((repo.path / 'reports/metrics.json').read_text())['test']['roc_auc']:.4f}"


def test_code_pr(repo: Project) -> None:
    features = "src/flightdelay/problem/features.py"
    open_pr(repo, lambda p: edit(p / features, "_HOLIDAY_HORIZON_DAYS = 30", "_HOLIDAY_HORIZON_DAYS = 14"), "holidays")
    code, text, pipeline = report(repo)
    # Every stage reads the problem package, so a change in it runs them all; the report says so.
    assert pipeline["stages"] == dict.fromkeys(("ingest", "validate", "featurize", "train", "evaluate"), "ran")
    assert "No params changed." in text
    assert code == 0, text


def test_schema_breaking_pr_fails_at_validate(repo: Project) -> None:
    schemas = "src/flightdelay/problem/schemas.py"
    open_pr(
        repo,
        lambda p: edit(
            p / schemas,
            "distance: Series[float] = pa.Field(gt=0, le=10_000)",
            "distance: Series[float] = pa.Field(gt=0, le=1_000)",
        ),
        "tighten distance",
    )
    code, text, pipeline = report(repo)
    assert code == 1
    assert "## ❌ Quality gate failed" in text
    assert "- the pipeline failed at stage **validate**" in text
    assert re.search(r"\| ❌ error \| distance \| less_than_or_equal_to\(1000\) \| [\d,]+ \|", text), text
    assert pipeline["stages"]["train"] == "not run"
    assert "The PR has no metrics" in text


def test_regression_past_the_gate_fails_and_names_the_metric(repo: Project) -> None:
    def cripple(root: Path) -> None:
        edit(root / "params.yaml", "max_iter: 300", "max_iter: 1")
        edit(root / "params.yaml", "max_leaf_nodes: 63", "max_leaf_nodes: 2")

    open_pr(repo, cripple, "one stump")
    code, text, _ = report(repo)
    assert code == 1
    assert "## ❌ Quality gate failed" in text
    assert re.search(
        r"- test\.roc_auc got worse by 0\.\d{4} \(0\.\d{4} -> 0\.\d{4}\), more than the allowed 0\.01", text
    ), text


def test_pr_without_its_reproduced_outputs_fails_and_says_what_to_commit(repo: Project) -> None:
    """Merged, a PR whose dvc.lock and metrics differ from the reproduction would leave main dirty for the release."""
    open_pr(
        repo, lambda p: edit(p / "params.yaml", "max_iter: 300", "max_iter: 150"), "fewer trees, outputs not committed"
    )
    code, text, _ = report(repo, commit_outputs=False)
    assert code == 1
    assert "## ❌ Quality gate failed" in text
    failure = next(line for line in text.splitlines() if "committed pipeline outputs differ" in line)
    assert "`dvc.lock`" in failure and "`reports/metrics.json`" in failure, failure
    assert "run `dvc repro` and commit them" in failure


def test_a_slice_beyond_the_fairness_rules_fails_and_is_named(repo: Project) -> None:
    """The slice rules judge the PR's reproduced slices: held to a gap no two carriers meet, the worst is named.
    The invariants are measured on the PR's model and shown."""

    def tighten(root: Path) -> None:
        edit(root / "params.yaml", "roc_auc: 0.30\n", "roc_auc: 0.001\n")
        edit(root / "params.yaml", "robustness: false", "robustness: true")

    open_pr(repo, tighten, "carriers alike")
    code, text, pipeline = report(repo)
    assert code == 1, text
    assert set(pipeline["stages"].values()) == {"skipped"}  # the gate is no stage's param: nothing re-ran
    failure = next(line for line in text.splitlines() if line.startswith("- slice carrier "))
    assert re.fullmatch(
        r"- slice carrier \w+: roc_auc = 0\.\d{4}, 0\.\d{4} from the best carrier \(\w+, 0\.\d{4}\), more than the "
        r"allowed gap 0\.001 for every carrier with at least \d+ test rows",
        failure,
    ), failure
    assert "| a storm at the origin | +0." in text  # the invariants, measured on the PR's model
