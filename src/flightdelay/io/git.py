"""git: reading other revisions (the base branch's metrics, params and data.dvc) and pushing pins."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


class GitError(RuntimeError):
    """A git command failed."""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
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
        done = subprocess.run(
            ["git", "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
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
