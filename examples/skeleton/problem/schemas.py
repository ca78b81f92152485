"""Pandera schemas of your problem: the raw files, the joined table and the request model.

TODO: describe your data here. The skeleton's rows are made-up events (a date, a category, an amount, a
count) with a 0/1 outcome; replace every column with yours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandera.pandas as pa
from pandera.typing import Series
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from flightdelay.core import schema as schema_tools

KEY = ("event_id",)  # TODO: the columns that identify a row
CATEGORIES = ("a", "b", "c")  # TODO: or check categories against a reference file, as the flight problem does
OUTCOME = "outcome"  # TODO: what becomes the label; known only later, so never a request field


class _Strict(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


class RawEvents(_Strict):
    """``data/raw/events/YYYY-MM.csv``: TODO, your raw files as you receive them (types only)."""

    event_id: Series[str]
    date: Series[str]
    category: Series[str] = pa.Field(nullable=True)
    amount: Series[float] = pa.Field(nullable=True)
    count: Series[float] = pa.Field(nullable=True)
    outcome: Series[int]


class Events(_Strict):
    """The joined table ingest writes and validate checks (hard checks: validate fails on any)."""

    event_id: Series[str]
    date: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$")
    category: Series[str] = pa.Field(nullable=True, isin=list(CATEGORIES))
    amount: Series[float] = pa.Field(nullable=True, ge=0)
    count: Series[float] = pa.Field(nullable=True, ge=0)
    outcome: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        strict = True
        coerce = True
        unique = list(KEY)  # noqa: RUF012 - pandera reads Config attributes


# Soft checks: counted in the validation report, never failing; each description says what a failure means.
WARNINGS = pa.DataFrameSchema(
    {
        "amount": pa.Column(float, nullable=False, description="no amount recorded"),  # TODO
    },
    strict=False,
    coerce=False,
)

# TODO: what a caller sends to the service: the joined table's columns known at prediction time.
REQUEST_COLUMNS = ("event_id", "date", "category", "amount", "count")
REQUIRED_REQUEST_COLUMNS = ("event_id", "date")
REQUEST_DESCRIPTIONS = {
    "event_id": "the event's id",
    "date": "the event's date, YYYY-MM-DD",
    "category": f"the event's category, one of {', '.join(CATEGORIES)}; unknown if absent",
    "amount": "the event's amount; unknown if absent",
    "count": "how many items the event has; unknown if absent",
}


def _calendar_date(cls: type[Any], date: str) -> str:
    try:
        dt.date.fromisoformat(date)
    except ValueError as exc:
        raise PydanticCustomError("calendar_date", "{date} is not a calendar date", {"date": date}) from exc
    return date


def request_model(examples: Mapping[str, Any] | None = None) -> type[Any]:
    """A pydantic model of one request, built from :class:`Events`: types and ranges come from the schema."""
    return schema_tools.request_model(
        "Event",
        Events.to_schema(),
        REQUEST_COLUMNS,
        REQUIRED_REQUEST_COLUMNS,
        REQUEST_DESCRIPTIONS,
        examples=examples,
        validators={"calendar_date": field_validator("date")(_calendar_date)},
        doc="One event (TODO: say what a caller sends and what the probability means).",
    )
