"""The request model: what a caller sends for one day, and how it becomes the joined row the model scores."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flightdelay.problem import EXAMPLE, PROBLEM

Day = PROBLEM.request_model(EXAMPLE)
NO_BUNDLE = Path("no-bundle")  # the problem has no reference files: its references are the schema's weather types


def refusal(**change: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Day.model_validate(EXAMPLE | change)
    return str(caught.value)


def test_the_example_is_a_valid_request_and_scores_as_its_joined_row() -> None:
    request = Day.model_validate(EXAMPLE).model_dump()
    features = PROBLEM.features_of(PROBLEM.request_rows([request], PROBLEM.load_references(NO_BUNDLE)))
    assert list(features.columns) == list(PROBLEM.features)
    assert features.loc[0, "season"] == "autumn"
    assert features.loc[0, "temp_range"] == pytest.approx(EXAMPLE["temp_max"] - EXAMPLE["temp_min"])


def test_the_recent_days_are_optional_and_unknown_when_absent() -> None:
    today = {k: EXAMPLE[k] for k in ("date", "precipitation", "temp_max", "temp_min", "wind", "weather")}
    request = Day.model_validate(today).model_dump()
    features = PROBLEM.features_of(PROBLEM.request_rows([request], PROBLEM.load_references(NO_BUNDLE)))
    assert math.isnan(features.loc[0, "precipitation_prev_day"])


def test_bad_requests_name_the_field_at_fault() -> None:
    assert "2015-02-30 is not a calendar date" in refusal(date="2015-02-30")
    assert "temp_min 20.0 is above temp_max 11.1" in refusal(temp_min=20.0)
    assert "greater than or equal to 0" in refusal(precipitation=-1.0)
    assert "Extra inputs are not permitted" in refusal(humidity=80.0)
    with pytest.raises(ValidationError, match="precipitation\n  Field required"):
        Day.model_validate({"date": "2015-01-01"})


def test_a_weather_the_model_does_not_know_is_the_callers_mistake() -> None:
    known = PROBLEM.load_references(NO_BUNDLE)
    requests = [EXAMPLE, EXAMPLE | {"weather": "hail"}]
    assert PROBLEM.unknown_values(requests, known) == [(1, "weather", "hail")]
