"""pr.yml and pr-comment.yml, executed by act on this machine: the report artifact, the gate, one sticky comment.

The GitHub API is the local server of ``tests/fake_github.py``; the artifact travels from pr.yml's run
to pr-comment.yml's through it, as on GitHub (list the run's artifacts, follow the redirect, unzip).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flightdelay.io.github import trusted_comment
from tests.act import REPOSITORY, Act, Run
from tests.e2e.conftest import Project, publish
from tests.fake_github import TOKEN, State, serve

pytestmark = pytest.mark.slow

PR = 7
REPORT_STEP = "Get data, reproduce"


@pytest.fixture
def github() -> Iterator[tuple[str, State]]:
    with serve() as api:
        yield api


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def push_pr(project: Project, message: str) -> str:
    """Reproduce and commit the outputs with the change, as the README asks a PR author to; push; the head SHA."""
    project.dvc("repro")
    project.git("add", "-A")
    project.git("commit", "--quiet", "-m", message)
    project.git("push", "--quiet", "--force", "origin", "HEAD:refs/heads/pr")
    return project.git("rev-parse", "HEAD").strip()


def pull_request_event(head: str, head_repository: str = REPOSITORY) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "head": {"ref": "pr", "sha": head, "repo": {"full_name": head_repository}},
            "base": {"ref": "main", "repo": {"full_name": REPOSITORY}},
        },
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
    }


def run_url(run_id: int) -> str:
    return f"https://github.com/{REPOSITORY}/actions/runs/{run_id}"


def workflow_run_event(run_id: int, head: str, conclusion: str) -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {
            "id": run_id,
            "name": "pr",
            "event": "pull_request",
            "conclusion": conclusion,
            "head_sha": head,
            "html_url": run_url(run_id),
        },
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
    }


def report_artifact(run: Run, run_id: int, head: str) -> dict[str, bytes]:
    files = run.artifact(run_id, "pr-report")
    assert files["pr-number.txt"].decode().strip() == str(PR)
    assert files["head-sha.txt"].decode().strip() == head
    assert files["report.md"].decode().startswith("<!-- flightdelay:pr-report -->\n")
    assert {"pipeline.json", "plots/roc.png"} <= set(files), sorted(files)
    return files


def comment(act: Act, state: State, run_id: int, head: str, conclusion: str) -> Run:
    """pr-comment.yml on the workflow_run event of pr.yml's run ``run_id``, its artifact served by the local API."""
    archive = next((act.artifacts / str(run_id) / "pr-report").glob("*.zip"))
    state.add_artifact(run_id, "pr-report", archive, head)
    done = act.run(
        "workflow_run",
        "pr-comment.yml",
        workflow_run_event(run_id, head, conclusion),
        run_id=run_id + 1000,
        secrets={"GITHUB_TOKEN": TOKEN},  # pr-comment's own token (actions: read, pull-requests: write)
    )
    assert done.returncode == 0, done.output[-4000:]
    return done


def test_a_params_pr_reports_then_a_failing_push_fails_the_check_and_updates_the_one_comment(
    reduced: Project, tmp_path: Path, github: tuple[str, State]
) -> None:
    url, state = github
    project, _ = publish(reduced, tmp_path)
    act = Act.prepare(project.path, tmp_path, url)
    project.git("checkout", "--quiet", "-b", "pr")

    # 1. A params PR from the repository itself: reproduced, reported, gate passed, artifact complete.
    edit(project.path / "params.yaml", "max_iter: 300", "max_iter: 150")
    first = push_pr(project, "fewer trees")
    state.add_pull(PR, "pr", first)
    run = act.run("pull_request", "pr.yml", pull_request_event(first), run_id=101)
    assert run.returncode == 0, run.output[-6000:]
    assert run.step(REPORT_STEP) == "success"
    assert "push-cache" not in (project.path / ".github/workflows/pr.yml").read_text()  # PRs never write the remote
    assert "check-pushed: no default DVC remote is configured" in run.output  # checked: not a fork's PR
    files = report_artifact(run, 101, first)
    report = files["report.md"].decode()
    assert "## ✅ Quality gate passed" in report
    assert "| train.hist_gradient_boosting.max_iter | 300 | 150 |" in report
    assert json.loads(files["pipeline.json"])["stages"]["train"] == "ran"

    # 2. pr-comment.yml posts that report as exactly one comment.
    comment(act, state, 101, first, "success")
    (posted,) = state.comments[PR]
    assert posted["user"]["login"] == "github-actions[bot]"
    assert posted["body"] == trusted_comment(report, run_url(101), "success")
    assert "**The check of this commit ✅ succeeded**" in posted["body"]

    # 3. A second push that cripples the model: the check fails, the artifact is still complete.
    edit(project.path / "params.yaml", "max_iter: 150", "max_iter: 1")
    edit(project.path / "params.yaml", "max_leaf_nodes: 63", "max_leaf_nodes: 2")
    second = push_pr(project, "one stump")
    state.pulls[PR]["head"]["sha"] = second
    run = act.run("pull_request", "pr.yml", pull_request_event(second), run_id=102)
    assert run.returncode != 0
    assert run.step(REPORT_STEP) == "failure"
    assert run.step("Record which PR and commit") == "success"
    failed = report_artifact(run, 102, second)["report.md"].decode()
    assert "## ❌ Quality gate failed" in failed and "- test.roc_auc got worse by" in failed

    # 4. Its comment run updates the same comment in place.
    comment(act, state, 102, second, "failure")
    (updated,) = state.comments[PR]
    assert updated["id"] == posted["id"] and updated["body"] == trusted_comment(failed, run_url(102), "failure")

    # 5. A late comment run for the first push (no longer the PR's head) posts nothing.
    late = comment(act, state, 101, first, "success")
    assert "not posting" in late.output
    (unchanged,) = state.comments[PR]
    assert unchanged["body"] == updated["body"]


def test_a_fork_data_pr_takes_the_sample_pushes_nothing_and_still_reports(
    reduced: Project, tmp_path: Path, github: tuple[str, State]
) -> None:
    """A fork's PR: no vars, no secrets, a read-only token; the project's remote cannot be read from it."""
    url, state = github
    project, _ = publish(reduced, tmp_path)
    remote = tmp_path / "dvc-remote"  # the project's remote, which holds nothing a fork could read
    remote.mkdir()
    project.dvc("remote", "add", "--default", "storage", str(remote))
    project.git("commit", "--quiet", "-am", "DVC remote")
    project.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
    project.git("fetch", "--quiet", "origin")
    act = Act.prepare(project.path, tmp_path, url)
    project.git("checkout", "--quiet", "-b", "pr")
    project.cli("add-month", "4")
    head = push_pr(project, "Add April")
    state.add_pull(PR, "pr", head)

    run = act.run("pull_request", "pr.yml", pull_request_event(head, head_repository="someone/flightdelay"), run_id=301)
    output = run.output
    assert "dvc pull from 'storage' failed, so the sample stands in" in output, output[-6000:]
    assert "check-pushed: not checked, a fork's PR cannot read the DVC remote" in output
    assert run.step("Cloud credentials for the DVC remote") == "not run"
    assert list(remote.iterdir()) == []  # nothing pushed
    report = report_artifact(run, 301, head)["report.md"].decode()
    assert "| flights/2013-04.csv | added | — |" in report
    assert "→ 2013-04," in report  # the test month moved
    # The fork's job cannot read the remote, so the base's model is not there to score April with.
    assert "regression rules **not applied**: the test rows moved and the base's model is not available" in report
    assert run.returncode == (0 if "## ✅ Quality gate passed" in report else 1)
    assert state.comments == {}  # pr.yml itself never writes to the PR: its token is read-only on forks
