"""The problem's own code on tiny inputs: features, label, request model, sample (TODO: yours)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from flightdelay.interface import SampleError
from flightdelay.problem import PROBLEM


@pytest.fixture
def joined(tmp_path: Path) -> pd.DataFrame:
    PROBLEM.write_sample(tmp_path / "raw", PROBLEM.sample_periods()[:2])
    return PROBLEM.ingest(tmp_path / "raw", PROBLEM.ingest_options())


def test_the_sample_passes_the_schema(tmp_path: Path, joined: pd.DataFrame) -> None:
    PROBLEM.schema(tmp_path / "raw").validate(joined, lazy=True)
    assert sorted(PROBLEM.period(joined).unique()) == PROBLEM.sample_periods()[:2]


def test_features_are_row_wise_and_in_order(joined: pd.DataFrame) -> None:
    whole = PROBLEM.features_of(joined)
    one_by_one = pd.concat([PROBLEM.features_of(joined.iloc[[i]]) for i in range(len(joined))])
    pd.testing.assert_frame_equal(whole, one_by_one)
    assert tuple(whole.columns) == PROBLEM.features


def test_labels_are_zero_or_one_and_both_occur(joined: pd.DataFrame) -> None:
    labels = PROBLEM.labels_of(joined, PROBLEM.label_options())
    assert set(labels.unique()) == {0, 1}


def test_the_example_request_is_valid_and_becomes_a_feature_row() -> None:
    model = PROBLEM.request_model()
    request = model.model_validate(PROBLEM.example).model_dump()
    rows = PROBLEM.request_rows([request], PROBLEM.load_references(Path()))
    assert len(PROBLEM.features_of(rows)) == 1
    with pytest.raises(ValidationError):
        model.model_validate({**PROBLEM.example, "unexpected": 1})


def test_the_sample_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    periods = PROBLEM.sample_periods()[:1]
    PROBLEM.write_sample(tmp_path / "one", periods)
    PROBLEM.write_sample(tmp_path / "two", periods)
    first, second = (sorted(p.read_bytes() for p in (tmp_path / d).rglob("*.csv")) for d in ("one", "two"))
    assert first == second
    with pytest.raises(SampleError, match="already exists"):
        PROBLEM.write_sample(tmp_path / "one", periods)
