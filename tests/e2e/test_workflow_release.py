"""release.yml, promote.yml and rollback.yml, executed by act against a real `mlflow server` and a bare `origin`.

The project is the template itself on the full sample (the model tests that gate registration are
written for it), with a local DVC remote that holds the data and the run-cache, as a PR's run leaves
them: the release job pulls, and `dvc repro` restores the stages instead of retraining.

The containerize steps need a Docker engine, which this machine lacks: the runs set the repository
variable ``CONTAINERIZE=false``, which leaves them out (the pin then names the image tag, no digest).
GitHub runs them; everything else in these workflows runs here as it would there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flightdelay import deploy, registry
from tests.act import REPOSITORY, Act, Run
from tests.conftest import ROOT
from tests.e2e.conftest import Project, clone, clone_template, environment, origin_log, push_to_origin
from tests.fake_github import TOKEN, State, serve

pytestmark = pytest.mark.slow


def aliases() -> dict[str, str | None]:
    held = {alias: registry.by_alias(alias) for alias in registry.ALIASES}
    return {alias: version.number if version else None for alias, version in held.items()}


def push_event(project: Project) -> dict[str, Any]:
    head = project.git("rev-parse", "HEAD").strip()
    return {"ref": "refs/heads/main", "after": head, "repository": {"full_name": REPOSITORY, "default_branch": "main"}}


def dispatch_event() -> dict[str, Any]:
    return {"inputs": {}, "ref": "refs/heads/main", "repository": {"full_name": REPOSITORY, "default_branch": "main"}}


def sync(project: Project) -> None:
    """The next run starts from origin's main, as a new job's checkout would."""
    project.git("pull", "--quiet", "--ff-only", "origin", "main")


def ok(run: Run) -> Run:
    assert run.returncode == 0, run.output[-8000:]
    return run


def published_template(tmp: Path) -> tuple[Project, Path]:
    """The template on its full sample, its DVC remote holding the data and the run-cache, pushed to ``origin``."""
    project = clone_template(tmp / "repo", environment(tmp))
    project.dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))  # the outputs `nox -s tests` reproduced
    project.dvc("checkout")
    project.dvc("remote", "add", "--default", "storage", str(tmp / "dvc-remote"))
    project.dvc("push")
    project.dvc("push", "--run-cache")
    return project, push_to_origin(project, tmp, "the DVC remote")


def approved(
    act: Act,
    github: State,
    workflow: str,
    run_id: int,
    reviewer: str,
    *,
    variables: dict[str, str],
    inputs: dict[str, str] | None = None,
) -> Run:
    """Run a production workflow that ``reviewer`` approved (GitHub's review history of the run says so)."""
    github.approve(run_id, "production", reviewer)
    token = {"GITHUB_TOKEN": TOKEN}
    event = dispatch_event() | {"inputs": inputs or {}}
    return act.run("workflow_dispatch", workflow, event, run_id=run_id, variables=variables, secrets=token)


def challenger(act: Act, github: State, project: Project, origin: Path, variables: dict[str, str]) -> None:
    """The challenger (shadow and A/B strategies) takes what staging runs, behind production's reviewers."""
    ok(approved(act, github, "promote.yml", 14, "carol", variables=variables, inputs={"to": "challenger"}))
    assert origin_log(origin)[0].startswith("deploy(challenger): flight-delay v2 ")
    assert aliases()["challenger"] == "2" and aliases()["production"] == "1"
    sync(project)
    told = project.cli("history", "challenger").stdout
    assert "approved by carol, run https://github.com/acme/flightdelay/actions/runs/14" in told, told


def refusals(act: Act, github: State, project: Project, origin: Path, variables: dict[str, str]) -> None:
    """A push that origin refuses leaves the alias alone; a dispatch from another branch runs nothing."""
    # 6. When the push is refused for good, the alias stays where main's pin says.
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = origin_log(origin)
    refused = approved(act, github, "promote.yml", 16, "carol", variables=variables)
    assert refused.returncode != 0
    assert "the pin did not reach origin/main, so the registry was left as it was" in refused.output
    assert origin_log(origin) == before
    assert aliases()["production"] == "1"
    hook.unlink()

    # 7. A dispatch from any other branch is refused before anything runs.
    project.git("checkout", "--quiet", "-b", "feature")
    refused = act.run("workflow_dispatch", "rollback.yml", dispatch_event() | {"ref": "refs/heads/feature"})
    assert refused.returncode != 0
    # The guard's own outcome, not its message: act has twice lost the output of this step, which ends in
    # milliseconds, under load (the message is the workflow's `::error::` line).
    assert refused.step("Refuse any branch but main") == "failure", refused.output[-6000:]
    assert refused.step("Put production back") == "not run"
    assert origin_log(origin) == before


def test_release_promote_release_promote_rollback_with_main_moving_between_runs(tmp_path: Path, tracking: str) -> None:
    project, origin = published_template(tmp_path)
    variables = {"MLFLOW_TRACKING_URI": tracking, "CONTAINERIZE": "false"}
    with serve() as (api, github):
        act = Act.prepare(project.path, tmp_path, api)

        # 1. A merge to main: reproduce, gate, model tests, register, build, smoke, pin staging, push.
        run = ok(act.run("push", "release.yml", push_event(project), variables=variables))
        assert run.step("Containerize and push the Bento") == "not run"  # no Docker engine here
        assert "pulled data.dvc, data/raw/airlines.csv.dvc, data/raw/airports.csv.dvc" in run.output
        assert "Stage 'train' is cached - skipping run" in run.output  # restored from the run-cache
        assert "answered 25 golden requests as recorded" in run.output
        subjects = origin_log(origin)
        assert subjects[0].startswith("deploy(staging): flight-delay v1 (flightdelay-service:v1-"), subjects
        assert aliases() == {"candidate": "1", "staging": "1", "production": None, "challenger": None}
        sync(project)

        # 2. Someone merges to main while the promotion waits: its push is rejected, rebased and retried.
        other = clone(origin, tmp_path / "other", environment(tmp_path))
        (other.path / "NOTES.md").write_text("a change merged meanwhile\n")
        other.git("add", "NOTES.md")
        other.git("commit", "--quiet", "-m", "a change merged meanwhile")
        other.git("push", "--quiet", "origin", "HEAD:main")
        ok(approved(act, github, "promote.yml", 11, "alice", variables=variables))
        assert origin_log(origin)[:2] == [
            subjects[0].replace("deploy(staging)", "deploy(production)"),
            "a change merged meanwhile",
        ]
        assert aliases()["production"] == "1"
        sync(project)

        # 3. A second version reaches staging (the same code path, run here directly to save a job).
        project.env["MLFLOW_TRACKING_URI"] = tracking
        project.env["BENTOML_HOME"] = str(tmp_path / "bentoml")
        released = project.cli("release", "--push", "origin")
        assert "pushed to origin/main" in released.stdout
        sync(project)

        # 4. Production takes it; 5. a rollback puts v1 back, pin and alias together.
        ok(approved(act, github, "promote.yml", 12, "bob", variables=variables))
        assert aliases()["production"] == "2"
        sync(project)
        ok(approved(act, github, "rollback.yml", 13, "alice", variables=variables))
        assert origin_log(origin)[0].startswith("rollback(production): flight-delay v1 ")
        assert aliases()["production"] == "1"
        sync(project)
        production = deploy.read_pin(project.path, "production")
        assert production is not None and production.model_version == "1"
        challenger(act, github, project, origin, variables)

        # The record of what ran where, from the git history the workflows pushed.
        told = project.cli("history", "production").stdout
        assert told.startswith("production: 3 pins, 1 of them rollbacks, newest first\n"), told
        runs = "https://github.com/acme/flightdelay/actions/runs"
        assert [line.split(": ", 1)[1].split(", ")[0] for line in told.splitlines()[1:] if " - " in line] == [
            "flight-delay v1",
            "flight-delay v2",
            "flight-delay v1",
        ], told
        assert f"approved by alice, run {runs}/13" in told and f"approved by bob, run {runs}/12" in told, told
        assert "rolled back from v2 in" in told and f"approved by alice, run {runs}/11" in told, told
        staging = project.cli("history", "staging").stdout
        assert staging.startswith("staging: 2 pins, 0 of them rollbacks"), staging
        assert "no approval recorded" in staging, staging

        refusals(act, github, project, origin, variables)


def test_pin_pushes_are_serialised_and_go_to_the_runners_origin() -> None:
    """Release, promote and rollback all push pins to main: one group, never cancelled half-way, no hard-coded host."""
    workflows = Path(__file__).resolve().parents[2] / ".github" / "workflows"
    for name in ("release.yml", "promote.yml", "rollback.yml"):
        text = (workflows / name).read_text()
        assert "concurrency:\n  group: deploy-pins\n  cancel-in-progress: false\n" in text, name
    for path in workflows.glob("*.yml"):
        assert "github.com/${GITHUB_REPOSITORY}" not in path.read_text(), path.name


def test_secrets_live_in_environments_and_prs_get_a_read_only_role() -> None:
    """A repository secret is readable by a workflow on any branch; an environment secret only by its jobs."""
    workflows = Path(__file__).resolve().parents[2] / ".github" / "workflows"
    for path in workflows.glob("*.yml"):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            text = yaml.safe_dump(job)
            for secret in ("MLFLOW_TRACKING_TOKEN", "RETRAIN_TOKEN"):
                if f"secrets.{secret}" in text:
                    assert job.get("environment"), f"{path.name}:{name} reads {secret} outside an environment"
    pr = (workflows / "pr.yml").read_text()
    assert "vars.AWS_PR_ROLE_ARN" in pr and "vars.AWS_ROLE_ARN" not in pr
