"""The service's request model is derived from the pandera schema, not written twice."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Annotated, Any

import bentoml.exceptions
import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, Field, ValidationError, create_model

from flightdelay import serving
from flightdelay.problem import EXAMPLE, References, schemas

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
    with pytest.raises(ValidationError) as caught:
        schemas.request_model().model_validate(EXAMPLE | {"year": 2013, "month": month, "day": day})
    (error,) = caught.value.errors()
    assert error["loc"] == ("day",)  # the field at fault: the caller is told which one to fix
    assert error["msg"] == f"2013-{month:02d}-{day:02d} is not a calendar date (day is out of range for month)"


def test_a_bad_month_is_named_and_not_blamed_on_the_day() -> None:
    with pytest.raises(ValidationError) as caught:
        Flight(**(GOOD | {"month": 13, "day": 31}))
    assert [e["loc"] for e in caught.value.errors()] == [("month",)]


def test_every_field_is_described_in_the_json_schema() -> None:
    """The OpenAPI page shows these: a caller must learn what tail_leg_of_day is without reading our code."""
    properties = schemas.request_model().model_json_schema()["properties"]
    assert {name: prop.get("description") for name, prop in properties.items()} == schemas.REQUEST_DESCRIPTIONS
    assert all(len(description) > 10 for description in schemas.REQUEST_DESCRIPTIONS.values())
    assert "this one included" in properties["origin_departures_in_hour"]["description"]


# --- Errors as the caller sees them: the request bodies are BentoML's input models for the two APIs ----------

Single = create_model("Input", flight=(Flight, ...))
Batch = create_model("Input", flights=(Annotated[list[Flight], Field(min_length=1, max_length=3)], ...))


def problems(model: type[BaseModel], body: str) -> list[tuple[str | None, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body)
    errors = caught.value.errors(include_context=False, include_input=False)  # as BentoML passes them on
    return [(p["field"], p["message"]) for p in serving.problems_of(errors)]


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("flight", "carrier"), "flight.carrier"),
        (("flights", 3, "carrier"), "flights[3].carrier"),
        (("flights", 0), "flights[0]"),
        (("flights",), "flights"),
        ((), None),
    ],
)
def test_field_paths_are_written_as_the_caller_wrote_them(loc: tuple[str | int, ...], path: str | None) -> None:
    assert serving.field_path(loc) == path


def test_problems_name_the_field_of_a_single_flight() -> None:
    body = json.dumps({"flight": {k: v for k, v in GOOD.items() if k != "dest"} | {"gate": "B12", "distance": -5}})
    assert problems(Single, body) == [
        ("flight.dest", "Field required"),
        ("flight.distance", "Input should be greater than 0"),
        ("flight.gate", "Extra inputs are not permitted"),
    ]


def test_problems_name_the_index_of_a_flight_in_a_batch() -> None:
    body = json.dumps({"flights": [GOOD, GOOD | {"month": 2, "day": 30}, GOOD | {"temp": math.nan}]})
    assert problems(Batch, body) == [
        ("flights[1].day", "2013-02-30 is not a calendar date (day is out of range for month)"),
        ("flights[2].temp", "Input should be a finite number"),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"flights": []}', [("flights", "List should have at least 1 item after validation, not 0")]),
        ('{"flights": [', [(None, "Invalid JSON: EOF while parsing a list at line 1 column 13")]),
        ("[1]", [(None, "Input should be an object")]),
    ],
)
def test_problems_of_the_request_as_a_whole(body: str, expected: list[tuple[str | None, str]]) -> None:
    assert problems(Batch, body) == expected


CODES = serving.KnownCodes(
    References(
        planes=pd.DataFrame(),
        airports=pd.DataFrame(),
        carriers=frozenset({"UA", "DL"}),
        origins=frozenset({"EWR", "JFK"}),
    )
)


def test_unknown_codes_are_refused_as_invalid_fields_where_the_caller_put_them() -> None:
    flights = [GOOD, GOOD | {"carrier": "ZZ"}, GOOD | {"carrier": "YY", "origin": "XYZ"}]
    with pytest.raises(ValidationError) as caught:
        CODES.validate(flights, lambda i: ("flights", i))
    errors = caught.value.errors(include_context=False, include_input=False)
    assert [(p["field"], p["message"]) for p in serving.problems_of(errors)] == [
        ("flights[1].carrier", "unknown carrier 'ZZ' (not in the reference tables)"),
        ("flights[2].carrier", "unknown carrier 'YY' (not in the reference tables)"),
        ("flights[2].origin", "unknown origin 'XYZ' (not in the reference tables)"),
    ]


def test_an_unknown_code_of_a_single_flight_names_no_index() -> None:
    with pytest.raises(ValidationError) as caught:
        CODES.validate([GOOD | {"carrier": "ZZ"}], lambda i: ("flight",))
    assert [e["loc"] for e in caught.value.errors()] == [("flight", "carrier")]
    CODES.validate([GOOD, GOOD | {"carrier": "DL", "origin": "JFK"}], lambda i: ("flights", i))  # known: no error


def bentoml_validation_body(model: type[BaseModel], body: str) -> bytes:
    """What BentoML 1.4.40 writes for a failed validation (``api_endpoint_wrapper`` in _bentoml_impl/server/app.py)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body)
    exc = caught.value
    detail = exc.errors(include_context=False, include_input=False)
    return json.dumps({"error": f"{exc.error_count()} validation error for {exc.title}", "detail": detail}).encode()


def test_bentomls_validation_errors_become_the_one_shape() -> None:
    raw = bentoml_validation_body(Single, json.dumps({"flight": GOOD | {"distance": -5, "carrier": "U"}}))
    assert serving.as_error_body(400, raw) == {
        "error": {
            "status": 400,
            "message": "2 problems in the request",
            "problems": [
                {"field": "flight.carrier", "message": "String should have at least 2 characters"},
                {"field": "flight.distance", "message": "Input should be greater than 0"},
            ],
        }
    }


@pytest.mark.parametrize(
    ("status", "raw", "message"),
    [
        (400, b'[{"error":"flights[0].carrier: unknown"}]', "flights[0].carrier: unknown"),  # BentoML's 4xx
        (413, b'[{"error":"request body is too large"}]', "request body is too large"),
        (500, b'{"error":"An unexpected error has occurred, please check the server log."}', "An unexpected error"),
        (404, b"Not Found", "Not Found"),  # Starlette's router
        (405, b"", "Method Not Allowed"),
        (502, b"<html>", "<html>"),
        (599, b"", "HTTP 599"),
    ],
)
def test_every_other_error_body_becomes_the_one_shape(status: int, raw: bytes, message: str) -> None:
    body = serving.as_error_body(status, raw)
    assert body["error"]["status"] == status
    assert body["error"]["message"].startswith(message)
    assert body["error"]["problems"] == []
    assert serving.as_error_body(status, json.dumps(body).encode()) == body  # already in shape: unchanged


def test_a_client_error_is_logged_as_one_line_that_names_the_problems() -> None:
    many = serving.error_body(
        400, "5 problems in the request", [{"field": f"flights[{i}].day", "message": "bad"} for i in range(5)]
    )
    assert serving.log_line("POST", "/predict_batch", many) == (
        "POST /predict_batch 400: flights[0].day: bad; flights[1].day: bad; flights[2].day: bad (and 2 more)"
    )
    whole = serving.error_body(413, "request body is 5242880 bytes; the limit is 4194304 bytes")
    assert serving.log_line("POST", "/predict", whole) == (
        "POST /predict 413: request body is 5242880 bytes; the limit is 4194304 bytes"
    )
    planted = serving.error_body(400, "1 problem", [{"field": "flight.a\nFAKE [ERROR] b", "message": "Extra inputs"}])
    line = serving.log_line("POST", "/predict", planted)
    assert "\n" not in line
    assert line == "POST /predict 400: flight.a\\x0aFAKE [ERROR] b: Extra inputs"


@pytest.mark.parametrize(
    ("exc", "client"),
    [
        (ValidationError.from_exception_data("Input", [{"type": "missing", "loc": ("flight",), "input": {}}]), True),
        (bentoml.exceptions.InvalidArgument("bad"), True),
        (bentoml.exceptions.BentoMLException("too large", error_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE), True),
        (bentoml.exceptions.InternalServerError("the model could not score the flight"), False),
        (bentoml.exceptions.BentoMLException("unexpected"), False),
        (ValueError("a bug"), False),
        (None, False),
    ],
)
def test_only_a_client_error_loses_its_traceback(exc: BaseException | None, client: bool) -> None:
    assert serving.is_client_error(exc) is client


def test_scoring_isolates_the_row_that_fails() -> None:
    """One row that fails the model (here: a planted one) gets None; the rows batched with it are scored."""

    def predict(flights: Sequence[dict[str, Any]]) -> tuple[np.ndarray, int]:
        if any(f.get("poison") for f in flights):
            raise ValueError("cannot score")
        return np.array([f["day"] / 100 for f in flights]), len(flights)

    rows = [{"day": 1}, {"day": 2, "poison": True}, {"day": 3}]
    assert serving.score_each(predict, rows) == ([0.01, None, 0.03], 2)
    assert serving.score_each(predict, [{"day": 5}]) == ([0.05], 1)
