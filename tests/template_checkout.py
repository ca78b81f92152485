"""The template as a fork starts from, in a temporary git repository, for the rename and update tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from flightdelay import template
from tests.conftest import ROOT

IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
MODULE = Path(template.__file__)
PACKAGE_DIR = f"src/{template.TEMPLATE_PACKAGE}"
# The template's own tests skip in a project made from it: its HEAD is renamed already.
RENAMED = (ROOT / template.ANSWERS_FILE).exists()


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | IDENTITY
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def checkout(target: Path) -> Path:
    """The committed template (this checkout's HEAD, not the work in progress beside it) as a new repository.

    The module under test replaces the committed one, so the tests check this module's code.
    """
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    shutil.copy2(MODULE, target / PACKAGE_DIR / "template.py")
    git(target, "init", "--quiet", "--initial-branch=main")
    git(target, "add", "--all")
    git(target, "commit", "--quiet", "-m", "the template")
    return target


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()
