"""Continuous training against real git, real DVC and the local GitHub API: one PR, one issue, the data reproduced."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from flightdelay import retrain
from flightdelay.io.drift_report import MARKER
from flightdelay.io.github import Client
from tests.e2e.conftest import Project
from tests.fake_github import TOKEN, serve

# A project with a reproduced pipeline and a drifting month per test: minutes in all, so CI runs them.
pytestmark = pytest.mark.slow


def _with_bare_origin(project: Project, tmp_path: Path) -> str:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(origin)], check=True)
    project.git("remote", "set-url", "origin", str(origin))
    branch = project.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    project.git("push", "--quiet", "origin", f"HEAD:{branch}")
    return branch


def test_drift_opens_one_retraining_pr_and_one_issue_and_updates_them(scenario: Project, tmp_path: Path) -> None:
    base = _with_bare_origin(scenario, tmp_path)
    head = scenario.git("rev-parse", "HEAD").strip()
    said: list[str] = []
    with serve() as (url, state):
        client = Client(api_url=url, repository="acme/flightdelay", token=TOKEN)
        outputs = [Path("reports")]
        first = retrain.propose(
            scenario.path,
            client,
            201304,
            f"{MARKER}\n## Model monitor: drift\n",
            said.append,
            outputs=outputs,
            base=base,
        )
        # The tree is back where it was: same commit, recorded data checked out, nothing to commit.
        assert scenario.git("rev-parse", "HEAD").strip() == head
        assert scenario.git("status", "--porcelain") == ""
        assert "Data and pipelines are up to date" in scenario.dvc("status", "data.dvc").stdout
        # The PR carries the new data.dvc and the pipeline reproduced on it, nothing else.
        changed = scenario.git("diff", "--name-only", f"{base}..{first.branch}").split()
        assert first.branch == "retrain/2013-04"
        assert {"data.dvc", "dvc.lock", "reports/metrics.json"} <= set(changed), changed
        assert all(name in ("data.dvc", "dvc.lock") or name.startswith("reports/") for name in changed), changed
        pushed = subprocess.run(
            ["git", "--git-dir", str(tmp_path / "origin.git"), "rev-parse", first.branch],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert pushed == scenario.git("rev-parse", first.branch).strip()
        before, after = (
            sum(out["nfiles"] for out in yaml.safe_load(scenario.git("show", f"{ref}:data.dvc"))["outs"])
            for ref in (base, first.branch)
        )
        assert after == before + 2  # the month's flights and weather
        # Merged as it is, the release finds nothing to reproduce: the committed dvc.lock is the reproduction.
        scenario.git("checkout", "--quiet", first.branch)
        scenario.dvc("checkout", "--force")
        assert "Data and pipelines are up to date" in scenario.dvc("status").stdout
        scenario.git("checkout", "--quiet", base)
        scenario.dvc("checkout", "--force")
        # Again, with a newer digest: the same PR and the same issue, updated.
        second = retrain.propose(
            scenario.path,
            client,
            201304,
            f"{MARKER}\n## Model monitor: still drifting\n",
            said.append,
            outputs=outputs,
            base=base,
        )
        assert (second.pull, second.issue) == (first.pull, first.issue)
        assert len(state.pulls) == 1 and len(state.issues) == 1
        (pull,) = state.pulls.values()
        (issue,) = state.issues.values()
        assert (pull["head"]["ref"], pull["base"]["ref"]) == ("retrain/2013-04", base)
        assert "still drifting" in pull["body"]
        assert (
            issue["body"].startswith(MARKER) and f"#{first.pull}" in issue["body"] and "still drifting" in issue["body"]
        )
        assert [label["name"] for label in issue["labels"]] == ["model-monitor"]
    api = [line for line in said if not line.startswith("reproducing")]
    assert api[:2] == [
        f"created PR #{first.pull} from retrain/2013-04: {pull['html_url']}",
        f"created issue #{first.issue}",
    ]
    assert api[2].startswith(f"updated PR #{first.pull}") and api[3] == f"updated issue #{first.issue}"


def test_the_scheduled_command_waits_for_a_second_flagged_month_then_proposes(
    scenario: Project, tmp_path: Path
) -> None:
    base = _with_bare_origin(scenario, tmp_path)
    origin = tmp_path / "origin.git"
    params = yaml.safe_load((scenario.path / "params.yaml").read_text())
    params["monitor"]["drift_share"] = 0.01  # any drifted feature counts: make this test about the plumbing
    assert (params["monitor"]["retrain_k"], params["monitor"]["retrain_n"]) == (2, 3)
    sensitive = tmp_path / "params.yaml"
    sensitive.write_text(yaml.safe_dump(params))
    with serve() as (url, state):
        env = scenario.env | {"GITHUB_API_URL": url, "GITHUB_REPOSITORY": "acme/flightdelay", "GITHUB_TOKEN": TOKEN}
        project = Project(scenario.path, env)
        args = ["monitor", "--month", "next", "--params", str(sensitive), "--out", str(tmp_path / "monitor")]
        args += ["--propose", "--base", base, "--history-branch", "monitor-history"]
        first = project.cli(*args)
        assert "Window: **flights of 2013-04**" in first.stdout
        assert "Retraining: not yet** — data drift" in first.stdout
        assert "1 of the one window so far (of 3) judged against this model flagged" in first.stdout
        assert state.pulls == {} and state.issues == {}
        recorded = subprocess.run(
            ["git", "--git-dir", str(origin), "show", "monitor-history:history.jsonl"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert [json.loads(line)["window"] for line in recorded.splitlines()] == ["2013-04"]

        second = project.cli(*args)  # next: the first later month without a verdict
        assert "Window: **flights of 2013-05**" in second.stdout
        assert "2 of the last 2 windows so far (of 3) judged against this model flagged" in second.stdout
        assert "created PR #" in second.stdout and "created issue #" in second.stdout
        # The PR brings the month after the data's latest, whichever window tipped the count.
        assert [p["head"]["ref"] for p in state.pulls.values()] == ["retrain/2013-04"]
        assert [p["base"]["ref"] for p in state.pulls.values()] == [base]
    log = subprocess.run(
        ["git", "--git-dir", str(origin), "log", "--format=%s", "monitor-history"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log == ["monitor: the verdict on flights of 2013-05", "monitor: the verdict on flights of 2013-04"]
    assert (tmp_path / "monitor" / "report.html").is_file()
    assert scenario.git("status", "--porcelain", "--untracked-files=no") == ""


def test_a_dirty_tree_is_refused_before_anything_is_pushed(scenario: Project, tmp_path: Path) -> None:
    _with_bare_origin(scenario, tmp_path)
    (scenario.path / "params.yaml").write_text((scenario.path / "params.yaml").read_text() + "\n# edited\n")
    with serve() as (url, state):
        client = Client(api_url=url, repository="acme/flightdelay", token=TOKEN)
        try:
            retrain.propose(scenario.path, client, 201304, MARKER, lambda _: None, outputs=[Path("reports")])
        except retrain.RetrainError as exc:
            assert "uncommitted changes" in str(exc)
        else:
            raise AssertionError("a dirty tree was not refused")
        assert state.pulls == {} and state.issues == {}
    assert "retrain/2013-04" not in scenario.git("branch", "--list")
