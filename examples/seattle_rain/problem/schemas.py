"""Pandera schemas of the rain problem: the raw daily files, the joined table and the request model.

* :class:`RawDays`: ``data/raw/daily/YYYY-MM.csv`` as the sample writes them (types only; ranges are validate's job);
* :class:`Days`: one row per day once ingest added the recent days and tomorrow's precipitation.

The service's request model is derived from :data:`REQUEST_COLUMNS` of :class:`Days`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series
from pydantic import ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from flightdelay.core import schema as schema_tools

DAY_KEY = ("date",)
# The day's weather as the source names it; a request naming another is the caller's mistake.
WEATHER_TYPES = ("drizzle", "fog", "rain", "snow", "sun")


class _Strict(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


class RawDays(_Strict):
    """``data/raw/daily/YYYY-MM.csv``: one row per day at Seattle-Tacoma airport (NOAA, via vega_datasets)."""

    date: Series[str]  # YYYY/MM/DD, as the source writes it
    precipitation: Series[float] = pa.Field(nullable=True)  # mm
    temp_max: Series[float] = pa.Field(nullable=True)  # °C
    temp_min: Series[float] = pa.Field(nullable=True)  # °C
    wind: Series[float] = pa.Field(nullable=True)  # m/s, the day's mean
    weather: Series[str] = pa.Field(nullable=True)


# Columns of the joined table, by what a caller knows on the evening of the day.
DAY_COLUMNS = ("date", "precipitation", "temp_max", "temp_min", "wind", "weather")
# The recent days, up to and including today: ingest derives them from the earlier rows.
RECENT_COLUMNS = (
    "precipitation_prev_day",
    "precipitation_2_days_ago",
    "temp_max_change_1d",
    "wind_change_1d",
    "rain_days_recent",
    "precipitation_recent",
)
REQUEST_COLUMNS = DAY_COLUMNS + RECENT_COLUMNS
# What the label is made of: known only the next day, never a request field.
OUTCOME = "precipitation_next_day"


class Days(_Strict):
    """The joined table that ingest writes and validate checks: one row per day whose next day is on file."""

    date: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$")
    precipitation: Series[float] = pa.Field(ge=0, le=500)
    temp_max: Series[float] = pa.Field(ge=-40, le=50)
    temp_min: Series[float] = pa.Field(ge=-40, le=50)
    wind: Series[float] = pa.Field(ge=0, le=60)
    weather: Series[str] = pa.Field(isin=list(WEATHER_TYPES))

    precipitation_prev_day: Series[float] = pa.Field(nullable=True, ge=0, le=500)
    precipitation_2_days_ago: Series[float] = pa.Field(nullable=True, ge=0, le=500)
    temp_max_change_1d: Series[float] = pa.Field(nullable=True, ge=-60, le=60)
    wind_change_1d: Series[float] = pa.Field(nullable=True, ge=-60, le=60)
    rain_days_recent: Series[float] = pa.Field(nullable=True, ge=0, le=31)
    precipitation_recent: Series[float] = pa.Field(nullable=True, ge=0, le=5000)

    precipitation_next_day: Series[float] = pa.Field(ge=0, le=500)

    @pa.dataframe_check(error="temp_min must not be above temp_max")
    @classmethod
    def min_below_max(cls, df: pd.DataFrame) -> pd.Series:
        return df["temp_min"] <= df["temp_max"]

    class Config:
        strict = True
        coerce = True
        unique = list(DAY_KEY)  # noqa: RUF012 - pandera reads Config attributes


# Soft checks: data a reviewer should know about but that the model copes with. Column checks only:
# the validation report names each failure by its column's description.
WARNINGS = pa.DataFrameSchema(
    {
        "precipitation_prev_day": pa.Column(
            float, nullable=False, description="the day before is not on file (the first day, or a gap)"
        ),
        "wind": pa.Column(float, pa.Check.le(20), description="a daily mean wind of gale force: check the source"),
        "precipitation": pa.Column(float, pa.Check.le(100), description="over 100 mm in a day: check the source"),
    },
    strict=False,
    coerce=False,
)


# --- The service's request model, derived from the Days schema --------------------------------------

# What a caller must send: the day and its observation. The recent days are optional, and unknown when
# absent, exactly as the pipeline treats a day whose predecessors are not on file.
REQUIRED_REQUEST_COLUMNS = DAY_COLUMNS
REQUEST_DESCRIPTIONS = {
    "date": "the day observed, as YYYY-MM-DD; the prediction is for the day after",
    "precipitation": "the day's precipitation, in mm",
    "temp_max": "the day's highest temperature, in °C",
    "temp_min": "the day's lowest temperature, in °C; not above temp_max",
    "wind": "the day's mean wind speed, in m/s",
    "weather": f"the day's weather, one of {', '.join(WEATHER_TYPES)}; another is refused",
    "precipitation_prev_day": "the precipitation of the day before, in mm",
    "precipitation_2_days_ago": "the precipitation two days before, in mm",
    "temp_max_change_1d": "the day's highest temperature minus the day before's, in °C",
    "wind_change_1d": "the day's mean wind speed minus the day before's, in m/s",
    "rain_days_recent": "how many of the recent days (ingest.window_days, the day included) had precipitation",
    "precipitation_recent": "the precipitation of the recent days (ingest.window_days, the day included), in mm",
}


def _calendar_date(cls: type[Any], date: str) -> str:
    try:
        dt.date.fromisoformat(date)
    except ValueError as exc:
        raise PydanticCustomError(
            "calendar_date", "{date} is not a calendar date ({reason})", {"date": date, "reason": str(exc)}
        ) from exc
    return date


def _not_above_max(cls: type[Any], temp_min: float, info: ValidationInfo) -> float:
    # temp_max is validated first (field order); if it failed, it says so itself.
    temp_max = info.data.get("temp_max")
    if temp_max is not None and temp_min > temp_max:
        raise PydanticCustomError(
            "temp_order", "temp_min {low} is above temp_max {high}", {"low": temp_min, "high": temp_max}
        )
    return temp_min


def request_model(examples: Mapping[str, Any] | None = None) -> type[Any]:
    """A pydantic model of one day as a caller knows it that evening, built from :class:`Days`."""
    return schema_tools.request_model(
        "Day",
        Days.to_schema(),
        REQUEST_COLUMNS,
        REQUIRED_REQUEST_COLUMNS,
        REQUEST_DESCRIPTIONS,
        examples=examples,
        validators={
            "calendar_date": field_validator("date")(_calendar_date),
            "temp_order": field_validator("temp_min")(_not_above_max),
        },
        doc="One day's weather in Seattle: the day's observation is required; the recent days are optional, "
        "and unknown when absent. The answer is the probability of precipitation the next day.",
    )
