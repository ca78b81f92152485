"""What ran where: pin commits with their trailers, read back from real git as stints, and who approved them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flightdelay import deploy, release
from flightdelay.cli import app
from tests import fake_github
from tests.conftest import ROOT
from tests.unit.test_deploy import PIN


def pinned(version: str) -> deploy.Pin:
    tag = f"v{version}-01234567"
    return deploy.Pin(
        **(PIN.as_dict() | {"model_version": version, "tag": tag, "bento_tag": f"{deploy.BENTO_NAME}:{tag}"})
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The template's deploy/ tree in a real git repository, committed as the template."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    for key, value in {"NAME": "t", "EMAIL": "t@example.com"}.items():
        monkeypatch.setenv(f"GIT_AUTHOR_{key}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{key}", value)
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", "deploy")
    commit(tmp_path, "the template", "2026-01-01T09:00:00+01:00")
    return tmp_path


def git(root: Path, *args: str, date: str | None = None) -> str:
    env = None
    if date:
        import os

        env = os.environ | {"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date}
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=env).stdout


def commit(root: Path, message: str, date: str) -> None:
    git(root, "commit", "--quiet", "-am", message, date=date)


def land(root: Path, pin: deploy.Pin, action: str, date: str, trailers: release.Trailers = ()) -> None:
    """What `promote`/`rollback --commit` do, at a given time."""
    deploy.write_pin(root, "production", pin)
    git(root, "add", "deploy")
    message = f"{action}(production): {pin.model_name} v{pin.model_version} ({pin.bento_tag})"
    if trailers:
        message += "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers)
    git(root, "commit", "--quiet", "-m", message, date=date)


def test_stints_run_from_one_pin_to_the_next_and_name_rollbacks_and_approvers(repo: Path) -> None:
    run = ("Run", "https://github.com/acme/flightdelay/actions/runs/11")
    land(repo, pinned("3"), "deploy", "2026-02-01T10:00:00Z", (("Approved-by", "alice"), run))
    land(repo, pinned("4"), "deploy", "2026-02-03T10:00:00Z", (("Approved-by", "bob"), ("Approved-by", "carol")))
    # A hand edit that leaves the pin alone (the replica count, say) is not a new stint.
    kustomization = repo / "deploy" / "production" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("count: 0", "count: 1"))
    commit(repo, "scale", "2026-02-04T10:00:00Z")
    land(repo, pinned("3"), "rollback", "2026-02-05T08:30:00+02:00", (("Approved-by", "alice"),))

    changes = deploy.history(repo, "production")
    assert [(c.action, c.approved_by) for c in changes] == [
        ("rollback", ("alice",)),
        ("edit", ()),
        ("deploy", ("bob", "carol")),
        ("deploy", ("alice",)),
        ("edit", ()),
    ]
    assert changes[3].run == run[1] and changes[0].run is None
    stints = deploy.stints(changes)
    assert [(s.change.pin.model_version if s.change.pin else None, s.change.date, s.until) for s in stints] == [
        ("3", "2026-02-05T08:30:00+02:00", None),
        ("4", "2026-02-03T10:00:00+00:00", "2026-02-05T08:30:00+02:00"),
        ("3", "2026-02-01T10:00:00+00:00", "2026-02-03T10:00:00+00:00"),
    ]
    newest = stints[0].lines()
    assert newest[0].startswith("2026-02-05 06:30 UTC - now: flight-delay v3, rolled back from v4 in ")
    assert newest[1] == f"    bento {deploy.BENTO_NAME}:v3-01234567, image ghcr.io/acme/flightdelay@{PIN.digest}"
    assert newest[2] == f"    built from commit {PIN.git_commit[:12]}, data {PIN.data_hash}"
    assert newest[3] == "    approved by alice"
    assert stints[1].lines()[3] == "    approved by bob, carol"
    assert stints[2].lines()[0].startswith("2026-02-01 10:00 UTC - 2026-02-03 10:00 UTC: flight-delay v3, deployed in ")
    assert stints[2].lines()[3] == f"    approved by alice, run {run[1]}"


def test_a_pin_removed_by_hand_is_a_stint_of_nothing_pinned(repo: Path) -> None:
    land(repo, pinned("3"), "deploy", "2026-02-01T10:00:00Z")
    shutil.copy(ROOT / "deploy" / "production" / "kustomization.yaml", repo / "deploy" / "production")
    commit(repo, "unpin", "2026-02-02T10:00:00Z")
    stints = deploy.stints(deploy.history(repo, "production"))
    assert len(stints) == 2
    assert stints[0].lines()[0].startswith("2026-02-02 10:00 UTC - now: nothing pinned (edited by hand from v3 in ")
    assert stints[1].until == "2026-02-02T10:00:00+00:00"
    assert "no approval recorded" in stints[1].lines()[3]


def test_history_prints_the_stints_and_json(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    runner = CliRunner()
    empty = runner.invoke(app, ["history", "staging"])
    assert empty.exit_code == 0 and "staging: nothing was ever pinned" in empty.output
    land(repo, pinned("3"), "deploy", "2026-02-01T10:00:00Z", (("Approved-by", "alice"),))
    land(repo, pinned("4"), "deploy", "2026-02-03T10:00:00Z", (("Approved-by", "bob"),))
    land(repo, pinned("3"), "rollback", "2026-02-04T10:00:00Z", (("Approved-by", "alice"),))
    shown = runner.invoke(app, ["history", "production"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("production: 3 pins, 1 of them rollbacks, newest first\n")
    document = json.loads(runner.invoke(app, ["history", "production", "--json"]).output)
    assert [(s["action"], s["pin"]["model_version"], s["replaced_version"]) for s in document["stints"]] == [
        ("rollback", "3", "4"),
        ("deploy", "4", "3"),
        ("deploy", "3", None),
    ]
    assert document["stints"][1]["until"] == document["stints"][0]["from"] == "2026-02-04T10:00:00+00:00"
    wrong = runner.invoke(app, ["history", "prod"])
    assert wrong.exit_code == 1 and "unknown environment 'prod'" in wrong.output


def test_a_hand_edit_that_breaks_an_old_pin_is_named_with_its_commit(repo: Path) -> None:
    land(repo, pinned("3"), "deploy", "2026-02-01T10:00:00Z")
    kustomization = repo / "deploy" / "production" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("v3-01234567", "v9-01234567", 1))
    commit(repo, "oops", "2026-02-02T10:00:00Z")
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(deploy.DeployError, match=f"kustomization.yaml@{head[:12]}.*inconsistent"):
        deploy.history(repo, "production")


@pytest.fixture
def github_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[fake_github.State]:
    """A workflow run's environment, with GitHub's API on loopback."""
    with fake_github.serve() as (base, state):
        monkeypatch.setenv("GITHUB_API_URL", base)
        monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/flightdelay")
        monkeypatch.setenv("GITHUB_RUN_ID", "42")
        monkeypatch.setenv("GITHUB_TOKEN", fake_github.TOKEN)
        yield state


def test_provenance_records_the_runs_approvers_of_that_environment_only(github_run: fake_github.State) -> None:
    github_run.approve(42, "production", "alice")
    github_run.approve(42, "staging", "mallory")  # another environment of the same run
    github_run.approve(42, "production", "bob", state="rejected")
    github_run.approve(41, "production", "eve")  # another run
    assert release.provenance("production", approvals=True) == (
        ("Approved-by", "alice"),
        ("Run", "https://github.com/acme/flightdelay/actions/runs/42"),
    )
    assert release.provenance("staging") == (("Run", "https://github.com/acme/flightdelay/actions/runs/42"),)


def test_a_run_nobody_approved_is_refused_before_anything_is_written(github_run: fake_github.State) -> None:
    with pytest.raises(release.ReleaseError, match="nobody approved run 42 for production: give the environment"):
        release.provenance("production", approvals=True)


def test_an_unreadable_review_history_is_named(github_run: fake_github.State, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    with pytest.raises(release.ReleaseError, match=r"could not read who approved run 42 for production: .*HTTP 401"):
        release.provenance("production", approvals=True)


def test_approvals_outside_a_workflow_run_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_RUN_ID", raising=False)
    with pytest.raises(release.ReleaseError, match="--record-approvals needs GITHUB_REPOSITORY and GITHUB_RUN_ID"):
        release.provenance("production", approvals=True)
    assert release.provenance("production") == ()


def test_commit_pin_writes_the_trailers_history_reads(repo: Path) -> None:
    deploy.write_pin(repo, "production", pinned("5"))
    trailers = (("Approved-by", "alice"), ("Run", "https://github.com/acme/flightdelay/actions/runs/7"))
    told = release.commit_pin(repo, "production", pinned("5"), "deploy", trailers)
    assert told.endswith(f": deploy(production): flight-delay v5 ({deploy.BENTO_NAME}:v5-01234567)")
    newest = deploy.history(repo, "production")[0]
    assert (newest.action, newest.approved_by, newest.run) == ("deploy", ("alice",), trailers[1][1])
