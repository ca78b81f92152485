"""``as_dicts``: a request's fields as ``model_dump`` gives them, by the cheap way only where that is the same."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, computed_field, field_serializer

from flightdelay.problem import PROBLEM
from flightdelay.serving import as_dicts


class Inner(BaseModel):
    code: str


class Nested(BaseModel):
    inner: Inner


class Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str


class Computed(BaseModel):
    code: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lower(self) -> str:
        return self.code.lower()


class Serialised(BaseModel):
    code: str

    @field_serializer("code")
    def upper(self, code: str) -> str:
        return code.upper()


def test_the_problems_request_model_takes_the_cheap_way_and_gives_what_model_dump_gives() -> None:
    flight = PROBLEM.request_model()(**PROBLEM.example)
    fields = as_dicts(type(flight))(flight)

    assert fields == flight.model_dump()
    assert fields is not vars(flight)  # a copy: the caller's dict is its own


@pytest.mark.parametrize(
    ("model", "given"),
    [
        (Nested, {"inner": {"code": "UA"}}),
        (Extra, {"code": "UA", "more": 1}),
        (Computed, {"code": "UA"}),
        (Serialised, {"code": "ua"}),
    ],
    ids=["nested", "extra", "computed", "serialiser"],
)
def test_any_other_model_is_dumped(model: type[BaseModel], given: dict[str, Any]) -> None:
    request = model(**given)

    assert as_dicts(model)(request) == request.model_dump() != vars(request)
