"""What a PR records must be in the DVC remote: a real DVC project, a real local remote, the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flightdelay.io import dvc


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PR_")}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.dvc recording data/raw (two months), committed, pushed to a local remote beside the project."""
    root = tmp_path_factory.mktemp("pushed") / "project"
    (root / "data" / "raw" / "flights").mkdir(parents=True)
    run(root, "git", "init", "--quiet")
    run(root, sys.executable, "-m", "dvc", "init", "--quiet")
    for month in ("01", "02"):
        (root / "data" / "raw" / "flights" / f"2013-{month}.csv").write_text(f"month\n{month}\n")
    (root / "data.dvc").write_text("outs:\n- path: data/raw\n")  # where the template keeps its pointer
    run(root, sys.executable, "-m", "dvc", "commit", "--quiet", "--force", "data.dvc")
    # A relative URL: a copy of the project and the remote beside it is a project with its own remote.
    run(root, sys.executable, "-m", "dvc", "remote", "add", "--default", "storage", "../remote")
    run(root, sys.executable, "-m", "dvc", "push", "--quiet")
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "data")
    return root.parent


@pytest.fixture
def project(pushed: Path, tmp_path: Path) -> Path:
    """A copy of the pushed project and its remote, for one test to change."""
    shutil.copytree(pushed, tmp_path / "copy", symlinks=True)
    return tmp_path / "copy" / "project"


def add_month(root: Path, *, push: bool) -> None:
    (root / "data" / "raw" / "flights" / "2013-03.csv").write_text("month\n03\n")
    run(root, sys.executable, "-m", "dvc", "commit", "--quiet", "--force", "data.dvc")
    if push:
        run(root, sys.executable, "-m", "dvc", "push", "--quiet")


def test_everything_pushed_passes(project: Path) -> None:
    add_month(project, push=True)
    assert dvc.pointers(project) == [Path("data.dvc")]
    assert dvc.unpushed(project, [Path("data.dvc")]) == {}


def test_a_month_nobody_pushed_is_named_with_its_listing(project: Path) -> None:
    add_month(project, push=False)
    assert dvc.unpushed(project, [Path("data.dvc")]) == {
        Path("data.dvc"): [
            "data/raw/flights/2013-03.csv",
            f"data/raw (its listing, {dvc.data_hash(project, Path('data.dvc'))})",
        ]
    }


def test_a_file_the_remote_lost_is_named_and_a_listing_nobody_has_is_the_whole_directory(project: Path) -> None:
    january = dvc.manifest(project, str(dvc.data_hash(project, Path("data.dvc"))))
    assert january is not None
    lost = january["flights/2013-01.csv"]
    (project.parent / "remote" / "files" / "md5" / lost[:2] / lost[2:]).unlink()
    assert dvc.unpushed(project, [Path("data.dvc")]) == {Path("data.dvc"): ["data/raw/flights/2013-01.csv"]}
    add_month(project, push=False)
    shutil.rmtree(project / ".dvc" / "cache")  # a CI checkout: nothing local
    md5 = dvc.data_hash(project, Path("data.dvc"))
    assert dvc.unpushed(project, [Path("data.dvc")]) == {
        Path("data.dvc"): [f"data/raw/ (all of it: the remote and this cache lack its listing {md5})"]
    }


def test_the_check_fails_the_pr_with_a_report_and_skips_forks_and_projects_without_a_remote(project: Path) -> None:
    add_month(project, push=False)
    cli = (sys.executable, "-m", "flightdelay", "check-pushed", "--out", "build/pr-report")
    done = run(project, *cli, check=False)
    assert done.returncode == 1, done.stderr
    report = (project / "build" / "pr-report" / "report.md").read_text()
    assert report == done.stdout
    assert "## ❌ Quality gate failed" in report
    assert "- `data.dvc` records data the DVC remote `storage` does not have: `data/raw/flights/2013-03.csv`" in report
    assert "(`dvc push data.dvc`)" in report
    fork = run(project, *cli, "--from-fork", check=False)
    assert fork.returncode == 0 and "not checked, a fork's PR cannot read the DVC remote" in fork.stdout
    run(project, sys.executable, "-m", "dvc", "push", "--quiet")
    assert "the remote holds all that data.dvc record" in run(project, *cli).stdout
    run(project, sys.executable, "-m", "dvc", "remote", "default", "--unset")
    assert "no default DVC remote is configured, nothing to check" in run(project, *cli).stdout
