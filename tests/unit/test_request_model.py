"""The service's request model is derived from the pandera schema, not written twice."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from flightdelay import schemas, serving
from flightdelay.serving import EXAMPLE

Flight = schemas.request_model()
GOOD: dict[str, Any] = {name: EXAMPLE[name] for name in schemas.REQUIRED_REQUEST_COLUMNS}


def error_of(**changes: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        Flight(**(GOOD | changes))
    error = caught.value.errors()[0]
    return ".".join(map(str, error["loc"])), error["type"]


def test_schedule_and_its_context_are_enough() -> None:
    flight = Flight(**GOOD)
    assert flight.temp is None
    assert flight.tailnum is None


def test_fields_are_exactly_the_request_columns() -> None:
    assert tuple(Flight.model_fields) == schemas.REQUEST_COLUMNS


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"distance": -1.0}, ("distance", "greater_than")),
        ({"humid": 140.0}, ("humid", "less_than_equal")),
        ({"carrier": "U"}, ("carrier", "string_too_short")),
        ({"origin": "ewr1"}, ("origin", "string_pattern_mismatch")),
        ({"temp": math.nan}, ("temp", "finite_number")),
        ({"temp": math.inf}, ("temp", "finite_number")),
        ({"month": "October"}, ("month", "int_parsing")),
        ({"gate": "B12"}, ("gate", "extra_forbidden")),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], expected: tuple[str, str]) -> None:
    assert error_of(**changes) == expected


@pytest.mark.parametrize("field", ["dest", "origin_departures_in_hour"])
def test_missing_required_field_is_named(field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Flight(**{k: v for k, v in GOOD.items() if k != field})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_a_schema_change_reaches_the_request_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandera.pandas as pa

    tightened = schemas.Flights.to_schema().update_column("distance", checks=[pa.Check.le(500)])
    monkeypatch.setattr(schemas.Flights, "to_schema", classmethod(lambda cls: tightened))
    with pytest.raises(ValidationError, match="distance"):
        schemas.request_model()(**GOOD)


def test_openapi_example_is_a_valid_request() -> None:
    model = schemas.request_model(examples=EXAMPLE)
    assert model.model_json_schema()["example"] == EXAMPLE
    model(**EXAMPLE)


def test_json_schema_speaks_openapi_30() -> None:
    """BentoML publishes OpenAPI 3.0.2: exclusive bounds are flags there, and numbers would break clients."""
    properties = schemas.request_model().model_json_schema()["properties"]
    assert properties["distance"]["minimum"] == 0
    assert properties["distance"]["exclusiveMinimum"] is True
    flagged = [
        name
        for name, prop in properties.items()
        for bound in (prop, *prop.get("anyOf", ()))
        for key in ("exclusiveMinimum", "exclusiveMaximum")
        if key in bound and not isinstance(bound[key], bool)
    ]
    assert flagged == []


@pytest.mark.parametrize(("month", "day"), [(2, 30), (2, 29), (4, 31), (11, 31)])
def test_a_day_that_is_not_in_its_month_is_refused(month: int, day: int) -> None:
    """Each part is in range, the date is not: refused here, before it can fail a batch of other callers."""
    with pytest.raises(ValidationError, match="not a calendar date"):
        schemas.request_model().model_validate(EXAMPLE | {"year": 2013, "month": month, "day": day})


def test_scoring_isolates_the_row_that_fails() -> None:
    """One row that fails the model (here: a planted one) gets None; the rows batched with it are scored."""

    def predict(flights: Sequence[dict[str, Any]]) -> tuple[np.ndarray, int]:
        if any(f.get("poison") for f in flights):
            raise ValueError("cannot score")
        return np.array([f["day"] / 100 for f in flights]), len(flights)

    rows = [{"day": 1}, {"day": 2, "poison": True}, {"day": 3}]
    assert serving.score_each(predict, rows) == ([0.01, None, 0.03], 2)
    assert serving.score_each(predict, [{"day": 5}]) == ([0.05], 1)
