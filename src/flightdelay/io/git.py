"""git: reading other revisions (the base branch's metrics, params and data.dvc) and pushing pins."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


class GitError(RuntimeError):
    """A git command failed."""


def git(root: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def rev_parse(root: Path, rev: str) -> str:
    return git(root, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()


def merge_base(root: Path, base: str, head: str = "HEAD") -> str:
    """Where the PR branched off ``base``: what the PR is compared with."""
    return git(root, "merge-base", base, head).strip()


def show(root: Path, rev: str, path: str) -> str | None:
    """The file at ``rev``, or None when it does not exist there."""
    done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def changed(root: Path, paths: Sequence[str | Path]) -> list[str]:
    """The files under ``paths`` that differ from HEAD (modified, added or untracked), sorted."""
    listed = git(root, "status", "--porcelain", "--untracked-files=all", "--", *map(str, paths))
    return sorted({line[3:].strip() for line in listed.splitlines() if line.strip()})


def modified(root: Path) -> list[str]:
    """The tracked files that differ from HEAD (what makes a tree dirty; untracked files do not), sorted."""
    listed = git(root, "status", "--porcelain", "--untracked-files=no")
    return sorted({line[3:].strip() for line in listed.splitlines() if line.strip()})


def push_rebased(root: Path, remote: str, branch: str, attempts: int = 5) -> str:
    """Push HEAD to ``remote``'s ``branch``; when the branch moved meanwhile, rebase onto it and try again.

    Returns the commit that landed. A rebase that conflicts is aborted (the local commits stay as they
    were) and raised: two changes to the same file need a person, not a retry.
    """
    for _ in range(attempts):
        done = _push(root, remote, f"HEAD:refs/heads/{branch}")
        if done.returncode == 0:
            return rev_parse(root, "HEAD")
        if "[rejected]" not in done.stdout:  # not a race (a hook, a protected branch, no access): do not retry
            raise GitError(f"git push {remote} HEAD:{branch} failed: {(done.stderr or done.stdout).strip()}")
        git(root, "fetch", "--quiet", remote, branch)
        rebased = subprocess.run(["git", "rebase", "FETCH_HEAD"], cwd=root, capture_output=True, text=True, check=False)
        if rebased.returncode != 0:
            subprocess.run(["git", "rebase", "--abort"], cwd=root, capture_output=True, check=False)
            raise GitError(
                f"{remote}/{branch} moved and its changes conflict with the local commits "
                f"({(rebased.stdout + rebased.stderr).strip().splitlines()[-1]}); nothing was pushed"
            )
    raise GitError(f"{remote}/{branch} kept moving: {attempts} pushes were rejected; nothing was pushed")


def read_branch_file(root: Path, remote: str, branch: str, path: str) -> tuple[str | None, str | None]:
    """The text of ``path`` on ``remote``'s ``branch`` and the branch's commit: (None, None) when there is no
    such branch, (None, commit) when the branch lacks the file. A remote that cannot be reached is raised."""
    if not git(root, "ls-remote", "--heads", remote, f"refs/heads/{branch}").strip():
        return None, None
    git(root, "fetch", "--quiet", "--no-tags", remote, f"refs/heads/{branch}")
    commit = rev_parse(root, "FETCH_HEAD")
    return show(root, commit, path), commit


def write_branch_file(
    root: Path, remote: str, branch: str, path: str, *, text: str, message: str, parent: str | None
) -> str:
    """Commit ``text`` as the one file ``path`` on top of ``parent`` and push it to ``remote``'s ``branch``.

    The working tree, the index and HEAD are left alone: the commit is made from git's objects alone, so a
    branch of records (the monitor's verdicts) lives beside the code without a checkout. The push is not
    forced: when the branch moved since ``parent`` was read, it is refused and raised, nothing lost.
    Returns the commit pushed.
    """
    blob = git(root, "hash-object", "-w", "--stdin", stdin=text).strip()
    tree = git(root, "mktree", stdin=f"100644 blob {blob}\t{path}\n").strip()
    parents = ["-p", parent] if parent else []
    commit = git(root, "commit-tree", tree, *parents, "-m", message).strip()
    done = _push(root, remote, f"{commit}:refs/heads/{branch}")
    if done.returncode != 0:
        moved = "[rejected]" in done.stdout
        why = f"{remote}/{branch} moved since it was read" if moved else (done.stderr or done.stdout).strip()
        raise GitError(f"pushing {path} to {remote}/{branch} failed: {why}; nothing was written there")
    return commit


def _push(root: Path, remote: str, refspec: str) -> subprocess.CompletedProcess[str]:
    """``git push --porcelain``, not raised: a rejection (``[rejected]`` in its output) is the caller's to judge."""
    return subprocess.run(
        ["git", "push", "--porcelain", remote, refspec], cwd=root, capture_output=True, text=True, check=False
    )
