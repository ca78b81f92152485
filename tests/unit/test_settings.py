from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flightdelay import settings
from flightdelay.problem import PROBLEM
from tests.conftest import ROOT


def test_project_params_parse(params: settings.Params) -> None:
    # The problem's own sections are validated by the models the problem declares.
    assert isinstance(params.ingest, PROBLEM.ingest_options)
    assert isinstance(params.label, PROBLEM.label_options)
    assert not any(path.is_absolute() for path in params.paths.model_dump().values())


def test_a_bad_problem_option_is_rejected_with_its_path(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["label"] = {**(raw["label"] or {}), "no_such_option": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(settings.ParamsError, match=r"label\.no_such_option: Extra inputs are not permitted"):
        settings.load(tmp_path / "params.yaml")


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


def test_retraining_on_more_windows_than_are_counted_is_rejected(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["monitor"] |= {"retrain_k": 4, "retrain_n": 3}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(
        settings.ParamsError, match=r"monitor: Value error, retrain_k \(4\) is more than retrain_n \(3\)"
    ):
        settings.load(tmp_path / "params.yaml")


def test_missing_file_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(settings.ParamsError, match="not found"):
        settings.load(tmp_path / "params.yaml")


def test_params_are_frozen(params: settings.Params) -> None:
    with pytest.raises(ValueError, match="frozen"):
        params.split.test_months = 2  # type: ignore[misc]
