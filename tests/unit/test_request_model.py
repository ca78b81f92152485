"""The service's request model is derived from the pandera schema, not written twice."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from flightdelay import schemas
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
