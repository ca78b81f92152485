"""monitor.yml and ci.yml's lint job, executed by act: the retraining branch, PR and issue through the local API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.act import REPOSITORY, Act, workflow_steps
from tests.e2e.conftest import Project, publish
from tests.fake_github import TOKEN, serve

pytestmark = pytest.mark.slow


def dispatch(month: str) -> dict[str, Any]:
    return {
        "inputs": {"month": month},
        "ref": "refs/heads/main",
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
    }


def branch_files(origin: Path, branch: str) -> list[str]:
    done = subprocess.run(
        ["git", "--git-dir", str(origin), "diff", "--name-only", f"main..{branch}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def recorded(origin: Path) -> list[str]:
    """The windows whose verdicts the branch monitor-history holds."""
    done = subprocess.run(
        ["git", "--git-dir", str(origin), "show", "monitor-history:history.jsonl"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line)["window"] for line in done.stdout.splitlines()]


def test_a_drifting_month_is_recorded_and_a_second_one_opens_one_retraining_pr_and_one_issue(
    reduced: Project, tmp_path: Path
) -> None:
    project, origin = publish(reduced, tmp_path)
    # Any drifted feature counts, so April and May against January and February are sure to be flagged.
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    params["monitor"]["drift_share"] = 0.01
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    project.dvc("repro")  # monitor.* is read by no stage: nothing to reproduce, but say so
    project.git("commit", "--quiet", "-am", "monitor: any drifted feature counts")
    project.git("push", "--quiet", "origin", "HEAD:main")
    with serve() as (api, state):
        act = Act.prepare(project.path, tmp_path, api)
        first = act.run("workflow_dispatch", "monitor.yml", dispatch("next"), secrets={"GITHUB_TOKEN": TOKEN})
        assert first.returncode == 0, first.output[-8000:]
        # The S3 remote's OIDC step is there (it used to be missing) and skipped without vars.AWS_ROLE_ARN.
        steps = workflow_steps(project.path / ".github" / "workflows" / "monitor.yml")
        oidc = steps["Cloud credentials for the DVC remote (OIDC), when one is configured"]
        assert oidc["uses"].startswith("aws-actions/configure-aws-credentials@")
        assert first.step("Cloud credentials for the DVC remote") == "not run"
        assert "Window: **flights of 2013-04**" in first.output
        # One flagged window of the two of three that retraining needs: recorded for the next run, nothing opened.
        assert "Retraining: not yet" in first.output
        assert recorded(origin) == ["2013-04"]
        assert state.pulls == {} and state.issues == {}

        second = act.run(
            "workflow_dispatch", "monitor.yml", dispatch("next"), secrets={"GITHUB_TOKEN": TOKEN}, run_id=2
        )
        assert second.returncode == 0, second.output[-8000:]
        assert "Window: **flights of 2013-05**" in second.output
        assert recorded(origin) == ["2013-04", "2013-05"]
        (pull,) = state.pulls.values()
        (issue,) = state.issues.values()
        assert (pull["head"]["ref"], pull["base"]["ref"]) == ("retrain/2013-04", "main")
        assert [label["name"] for label in issue["labels"]] == ["model-monitor"]
        assert f"#{pull['number']}" in issue["body"]
        assert "2 of the last 2 windows so far (of 3) judged against this model flagged" in issue["body"]
        # The branch carries the new month and the pipeline reproduced on it: its release finds a clean tree.
        files = branch_files(origin, "retrain/2013-04")
        assert {"data.dvc", "dvc.lock", "reports/metrics.json"} <= set(files), files
        assert "digest.md" in second.artifact(2, "monitor")


def test_the_lint_job_of_ci_yml_passes_on_the_template(reduced: Project, tmp_path: Path) -> None:
    project, _ = publish(reduced, tmp_path)
    with serve() as (api, _):
        act = Act.prepare(project.path, tmp_path, api)
        event = {"ref": "refs/heads/main", "repository": {"full_name": REPOSITORY, "default_branch": "main"}}
        run = act.run("push", "ci.yml", event, job="lint")
    assert run.returncode == 0, run.output[-8000:]
    assert run.step("Lint code, workflows and the deploy overlays") == "success"
    assert run.step("Render the overlays with the real kustomize too") == "success"
    assert "All checks passed!" in run.output  # ruff
    assert "Success: no issues found" in run.output  # mypy
