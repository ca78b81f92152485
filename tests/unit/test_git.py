"""Pushing pins with real git: a moved main is rebased onto and retried, a conflict or a refusal is raised."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flightdelay.io import git

IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def commit(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    run(repo, "add", name)
    run(repo, "commit", "--quiet", "-m", f"edit {name}")


@pytest.fixture(autouse=True)
def identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commits flightdelay.io.git makes need a committer: a fresh machine has no global git identity."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@example.com")


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare origin with one commit on main, and two clones of it."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(seed)], check=True)
    commit(seed, "pin.yaml", "v1\n")
    run(seed, "push", "--quiet", str(origin), "HEAD:main")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for clone in (ours, theirs):
        subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    return origin, ours, theirs


def log(origin: Path) -> list[str]:
    return run(origin, "log", "--format=%s", "main").splitlines()


def test_a_moved_main_is_rebased_onto_and_the_push_lands(clones: tuple[Path, Path, Path]) -> None:
    origin, ours, theirs = clones
    commit(theirs, "README.md", "merged meanwhile\n")
    run(theirs, "push", "--quiet", "origin", "HEAD:main")
    commit(ours, "pin.yaml", "v2\n")
    landed = git.push_rebased(ours, "origin", "main")
    assert log(origin) == ["edit pin.yaml", "edit README.md", "edit pin.yaml"]
    assert landed == run(origin, "rev-parse", "main").strip()


def test_a_conflicting_change_is_raised_and_nothing_is_pushed(clones: tuple[Path, Path, Path]) -> None:
    origin, ours, theirs = clones
    commit(theirs, "pin.yaml", "v1 by hand\n")
    run(theirs, "push", "--quiet", "origin", "HEAD:main")
    commit(ours, "pin.yaml", "v2\n")
    mine = run(ours, "rev-parse", "HEAD")
    with pytest.raises(git.GitError, match="conflict with the local commits"):
        git.push_rebased(ours, "origin", "main")
    assert run(ours, "rev-parse", "HEAD") == mine  # the rebase was aborted: our commit is as it was
    assert (ours / "pin.yaml").read_text() == "v2\n"
    assert log(origin) == ["edit pin.yaml", "edit pin.yaml"] and "v1 by hand" in run(origin, "show", "main:pin.yaml")


def test_a_refused_push_is_not_retried(clones: tuple[Path, Path, Path]) -> None:
    origin, ours, _ = clones
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    commit(ours, "pin.yaml", "v2\n")
    with pytest.raises(git.GitError, match="main is protected"):
        git.push_rebased(ours, "origin", "main")
    assert log(origin) == ["edit pin.yaml"]


def test_modified_lists_changed_tracked_files_not_untracked_ones(clones: tuple[Path, Path, Path]) -> None:
    _, ours, _ = clones
    assert git.modified(ours) == []
    (ours / "pin.yaml").write_text("v2\n")
    (ours / "scratch.txt").write_text("not tracked\n")
    assert git.modified(ours) == ["pin.yaml"]


def test_a_branch_of_records_is_written_beside_the_code_without_touching_the_checkout(
    clones: tuple[Path, Path, Path],
) -> None:
    origin, ours, theirs = clones
    head = run(ours, "rev-parse", "HEAD")
    assert git.read_branch_file(ours, "origin", "monitor-history", "history.jsonl") == (None, None)
    first = git.write_branch_file(
        ours, "origin", "monitor-history", "history.jsonl", text="one\n", message="monitor: one", parent=None
    )
    text, parent = git.read_branch_file(theirs, "origin", "monitor-history", "history.jsonl")
    assert (text, parent) == ("one\n", first)
    second = git.write_branch_file(
        theirs, "origin", "monitor-history", "history.jsonl", text="one\ntwo\n", message="monitor: two", parent=parent
    )
    assert run(origin, "log", "--format=%s", "monitor-history").splitlines() == ["monitor: two", "monitor: one"]
    assert run(origin, "ls-tree", "--name-only", "monitor-history").split() == ["history.jsonl"]
    assert run(origin, "rev-parse", "monitor-history").strip() == second
    # The checkout, index and branch of the writer are as they were.
    assert run(ours, "rev-parse", "HEAD") == head
    assert run(ours, "status", "--porcelain") == ""
    assert log(origin) == ["edit pin.yaml"]


def test_a_branch_that_moved_since_it_was_read_is_refused_and_keeps_its_records(
    clones: tuple[Path, Path, Path],
) -> None:
    origin, ours, theirs = clones
    _, parent = git.read_branch_file(ours, "origin", "records", "history.jsonl")
    landed = git.write_branch_file(ours, "origin", "records", "history.jsonl", text="a\n", message="a", parent=parent)
    with pytest.raises(git.GitError, match="origin/records moved since it was read; nothing was written there"):
        git.write_branch_file(theirs, "origin", "records", "history.jsonl", text="b\n", message="b", parent=None)
    assert run(origin, "rev-parse", "records").strip() == landed
    assert run(origin, "show", "records:history.jsonl") == "a\n"


def test_a_branch_without_the_file_reads_as_none_with_its_commit(clones: tuple[Path, Path, Path]) -> None:
    origin, ours, _ = clones
    main = run(origin, "rev-parse", "main").strip()
    assert git.read_branch_file(ours, "origin", "main", "history.jsonl") == (None, main)
    with pytest.raises(git.GitError, match="ls-remote"):
        git.read_branch_file(ours, "nowhere", "main", "history.jsonl")
