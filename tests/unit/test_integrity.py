"""Nothing loads a model whose bytes are not the ones dvc.lock records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import joblib
import pytest
import yaml

from flightdelay.io import dvc

MODEL = Path("models/model.joblib")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    joblib.dump({"weights": [1, 2, 3]}, tmp_path / MODEL)
    md5 = hashlib.md5((tmp_path / MODEL).read_bytes(), usedforsecurity=False).hexdigest()
    lock = {"schema": "2.0", "stages": {"train": {"cmd": "python -m x", "outs": [{"path": str(MODEL), "md5": md5}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    return tmp_path


def test_the_recorded_model_loads(root: Path) -> None:
    assert dvc.load_model(root, MODEL) == {"weights": [1, 2, 3]}


def test_other_bytes_under_the_same_name_are_refused_before_unpickling(root: Path) -> None:
    joblib.dump({"planted": True}, root / MODEL)
    with pytest.raises(dvc.IntegrityError, match=r"models/model\.joblib hashes to [0-9a-f]{32} but dvc\.lock records"):
        dvc.load_model(root, MODEL)


def test_a_missing_file_or_record_is_named(root: Path) -> None:
    with pytest.raises(dvc.IntegrityError, match=r"records no output models/other\.joblib for stage .train."):
        dvc.verify_output(root, "train", Path("models/other.joblib"))
    with pytest.raises(dvc.IntegrityError, match="records no stage 'evaluate'"):
        dvc.verify_output(root, "evaluate", MODEL)
    (root / MODEL).unlink()
    with pytest.raises(dvc.IntegrityError, match=r"models/model\.joblib is missing"):
        dvc.verify_output(root, "train", MODEL)
