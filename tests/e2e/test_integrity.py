"""A planted model is never unpickled: a tampered DVC remote object, and a model file swapped in the workspace.

The planted file is a pickle whose loading runs code (it creates a marker file), so each check proves
that nothing unpickled it, not only that something failed.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import joblib
import pytest
import yaml

from tests.e2e.conftest import Project, clone, clone_sharing_cache, environment

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling this runs ``touch <marker>``: what an attacker's model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path) -> None:
    """Replace the file (a new inode: a hard link to a shared cache object must not carry the payload)."""
    path.unlink()
    joblib.dump(Payload(marker), path)


def recorded_md5(project: Project) -> str:
    lock = yaml.safe_load((project.path / "dvc.lock").read_text())
    return str(next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.joblib"))


def test_a_planted_model_is_never_loaded(reduced: Project, tmp_path: Path) -> None:
    marker = tmp_path / "the-planted-model-ran"
    author = clone_sharing_cache(reduced, tmp_path / "author")
    remote = tmp_path / "remote"
    author.dvc("remote", "add", "--default", "storage", str(remote))
    author.git("commit", "--quiet", "-am", "DVC remote")
    author.dvc("push")
    author.dvc("push", "--run-cache")
    md5 = recorded_md5(author)
    # Someone with write access to the remote swaps the object behind the hash that main records.
    plant(remote / "files" / "md5" / md5[:2] / md5[2:], marker)

    # A fresh clone pulls (verifying what it downloads) and reproduces, as the release job does.
    fresh = clone(author.path, tmp_path / "fresh", environment(tmp_path))
    assert "pulled data.dvc, data/raw/airlines.csv.dvc" in fresh.cli("get-data").stdout
    assert "verify = true" in (fresh.path / ".dvc" / "config.local").read_text()
    repro = fresh.dvc("repro", check=False)
    output = repro.stdout + repro.stderr
    assert not marker.exists(), output[-3000:]
    model = fresh.path / "models" / "model.joblib"
    if repro.returncode == 0:  # the planted object was refused and the stage retrained: the recorded bytes
        assert hashlib.md5(model.read_bytes(), usedforsecurity=False).hexdigest() == md5
    else:  # or it was restored, and evaluate refused to load it
        assert f"but dvc.lock records {md5}" in output, output[-3000:]

    # Swapped in the workspace (a poisoned cache, a hand copy): every loader refuses before unpickling.
    plant(model, marker)
    refused = fresh.cli("register", check=False)
    assert refused.returncode == 1 and "not registered: models/model.joblib hashes to" in refused.stderr
    evaluate = fresh.run(sys.executable, "-m", "flightdelay.stages.evaluate", check=False)
    assert evaluate.returncode != 0 and f"but dvc.lock records {md5}" in evaluate.stdout + evaluate.stderr
    tests = fresh.run(sys.executable, "-m", "pytest", "tests/model", "-q", "-p", "no:cacheprovider", check=False)
    assert tests.returncode != 0 and "IntegrityError" in tests.stdout
    assert not marker.exists()
