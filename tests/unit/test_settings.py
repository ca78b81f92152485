from __future__ import annotations

from pathlib import Path

import pytest

from flightdelay import settings
from tests.conftest import ROOT


def test_project_params_parse(params: settings.Params) -> None:
    assert params.split.test_months == 1
    assert params.paths.model == Path("models/model.joblib")


def test_unknown_key_is_rejected_with_its_path(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text().replace("  random_state: 42", "  random_state: 42\n  randon_seed: 1")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(settings.ParamsError, match=r"train\.randon_seed: Extra inputs are not permitted"):
        settings.load(tmp_path / "params.yaml")


def test_out_of_range_value_is_rejected(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text().replace("learning_rate: 0.05", "learning_rate: -1")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(settings.ParamsError, match="learning_rate"):
        settings.load(tmp_path / "params.yaml")


def test_missing_file_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(settings.ParamsError, match="not found"):
        settings.load(tmp_path / "params.yaml")


def test_params_are_frozen(params: settings.Params) -> None:
    with pytest.raises(ValueError, match="frozen"):
        params.split.test_months = 2  # type: ignore[misc]
