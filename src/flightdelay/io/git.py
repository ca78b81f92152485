"""Reading other revisions with git: the base branch's committed metrics, params and data.dvc."""

from __future__ import annotations

import subprocess
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
