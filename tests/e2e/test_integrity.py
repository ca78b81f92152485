"""A model planted in the DVC remote is never loaded: real `dvc push --run-cache`, a tampered remote object,
a fresh clone that fetches the run-cache and reproduces, as the release job would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import yaml

from tests.e2e.conftest import Project, clone, clone_sharing_cache, environment

pytestmark = pytest.mark.slow


def test_a_planted_model_in_the_remote_fails_the_pipeline_and_registration(reduced: Project, tmp_path: Path) -> None:
    project = clone_sharing_cache(reduced, tmp_path / "author")
    remote = tmp_path / "remote"
    project.dvc("remote", "add", "--default", "storage", str(remote))
    project.git("commit", "--quiet", "-am", "DVC remote")
    project.dvc("push")
    project.dvc("push", "--run-cache")
    lock = yaml.safe_load((project.path / "dvc.lock").read_text())
    md5 = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.joblib")
    planted = remote / "files" / "md5" / md5[:2] / md5[2:]
    assert planted.is_file()
    # Someone with write access to the remote swaps the object behind the hash main records.
    planted.chmod(0o644)
    joblib.dump({"planted": True}, planted)

    fresh = clone(project.path, tmp_path / "fresh", environment(tmp_path))
    assert "pulled data/raw from DVC remote 'storage'" in fresh.cli("get-data").stdout
    repro = fresh.dvc("repro", check=False)
    output = repro.stdout + repro.stderr
    assert "Stage 'train' is cached - skipping run" in output  # DVC restores the planted bytes unverified...
    assert repro.returncode != 0  # ...and evaluate refuses to load them
    assert "models/model.joblib hashes to " in output and f"but dvc.lock records {md5}" in output, output[-3000:]
    assert subprocess.run(["git", "diff", "--quiet", "dvc.lock"], cwd=fresh.path, check=False).returncode == 0

    refused = fresh.cli("register", check=False)
    assert refused.returncode == 1
    assert "not registered: models/model.joblib hashes to" in refused.stderr
    # The model tests load it only through the same check.
    model_tests = fresh.run(sys.executable, "-m", "pytest", "tests/model", "-q", "-p", "no:cacheprovider", check=False)
    assert model_tests.returncode != 0 and "IntegrityError" in model_tests.stdout
