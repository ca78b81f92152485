"""Pandera schemas: the single source of truth for column names, types and ranges.

Two kinds of table:

* ``Raw*``: the source files as a team receives them (types only; ranges are validate's job);
* :class:`Flights`: one row per flight after ingest joined weather, aircraft and destination.

The service's request model is derived from :data:`REQUEST_COLUMNS` of :class:`Flights`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series
from pydantic import ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from flightdelay.core import schema as schema_tools

FLIGHT_KEY = ("year", "month", "day", "carrier", "flight", "origin")
WEATHER_KEY = ("origin", "year", "month", "day", "hour")


class _Strict(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


class RawFlights(_Strict):
    """``data/raw/flights/YYYY-MM.csv``: one row per scheduled departure from NYC."""

    year: Series[int]
    month: Series[int]
    day: Series[int]
    dep_time: Series[float] = pa.Field(nullable=True)
    sched_dep_time: Series[int]
    dep_delay: Series[float] = pa.Field(nullable=True)
    arr_time: Series[float] = pa.Field(nullable=True)
    sched_arr_time: Series[int]
    arr_delay: Series[float] = pa.Field(nullable=True)
    carrier: Series[str]
    flight: Series[int]
    tailnum: Series[str] = pa.Field(nullable=True)
    origin: Series[str]
    dest: Series[str]
    air_time: Series[float] = pa.Field(nullable=True)
    distance: Series[float]
    hour: Series[int]
    minute: Series[int]
    time_hour: Series[str]


class RawWeather(_Strict):
    """``data/raw/weather/YYYY-MM.csv``: hourly observations at each NYC origin airport."""

    origin: Series[str]
    year: Series[int]
    month: Series[int]
    day: Series[int]
    hour: Series[int]
    temp: Series[float] = pa.Field(nullable=True)
    dewp: Series[float] = pa.Field(nullable=True)
    humid: Series[float] = pa.Field(nullable=True)
    wind_dir: Series[float] = pa.Field(nullable=True)
    wind_speed: Series[float] = pa.Field(nullable=True)
    wind_gust: Series[float] = pa.Field(nullable=True)
    precip: Series[float] = pa.Field(nullable=True)
    pressure: Series[float] = pa.Field(nullable=True)
    visib: Series[float] = pa.Field(nullable=True)
    time_hour: Series[str]


class RawPlanes(_Strict):
    """``data/raw/planes.csv``: the FAA registry entry of each tail number."""

    tailnum: Series[str] = pa.Field(unique=True)
    year: Series[float] = pa.Field(nullable=True)
    type: Series[str] = pa.Field(nullable=True)
    manufacturer: Series[str] = pa.Field(nullable=True)
    model: Series[str] = pa.Field(nullable=True)
    engines: Series[float] = pa.Field(nullable=True)
    seats: Series[float] = pa.Field(nullable=True)
    speed: Series[float] = pa.Field(nullable=True)
    engine: Series[str] = pa.Field(nullable=True)


class RawAirports(_Strict):
    """``data/raw/airports.csv``: FAA code and location of each airport."""

    faa: Series[str] = pa.Field(unique=True)
    name: Series[str] = pa.Field(nullable=True)
    lat: Series[float]
    lon: Series[float]
    alt: Series[float] = pa.Field(nullable=True)
    tz: Series[float] = pa.Field(nullable=True)
    dst: Series[str] = pa.Field(nullable=True)
    tzone: Series[str] = pa.Field(nullable=True)


class RawAirlines(_Strict):
    """``data/raw/airlines.csv``: carrier codes."""

    carrier: Series[str] = pa.Field(unique=True)
    name: Series[str]


# Columns of the joined table, by what a caller knows before departure.
SCHEDULE_COLUMNS = (
    "year",
    "month",
    "day",
    "sched_dep_time",
    "sched_arr_time",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "distance",
)
WEATHER_COLUMNS = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
    "pressure_change_3h",
    "pressure_change_12h",
    "temp_change_24h",
    "humid_change_3h",
    "wind_speed_max_3h",
    "precip_3h",
    "visib_min_3h",
)
CONTEXT_COLUMNS = (
    "tail_leg_of_day",
    "minutes_since_tail_prev_departure",
    "origin_departures_in_hour",
    "carrier_departures_of_day",
    "tail_prev_departure_delay",
)
REQUEST_COLUMNS = SCHEDULE_COLUMNS + WEATHER_COLUMNS + CONTEXT_COLUMNS


def _hhmm(series: pd.Series) -> pd.Series:
    return (series // 100 <= 24) & (series % 100 < 60)


class Flights(_Strict):
    """The joined table that ingest writes and validate checks: one row per flight."""

    year: Series[int] = pa.Field(ge=1990, le=2100)
    month: Series[int] = pa.Field(ge=1, le=12)
    day: Series[int] = pa.Field(ge=1, le=31)
    sched_dep_time: Series[int] = pa.Field(ge=0, le=2400)
    sched_arr_time: Series[int] = pa.Field(ge=0, le=2400)
    carrier: Series[str] = pa.Field(str_length={"min_value": 2, "max_value": 3})
    flight: Series[int] = pa.Field(ge=1, le=9999)
    tailnum: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z0-9]{2,6}$")
    origin: Series[str] = pa.Field(str_matches=r"^[A-Z0-9]{3}$")
    dest: Series[str] = pa.Field(str_matches=r"^[A-Z0-9]{3}$")
    distance: Series[float] = pa.Field(gt=0, le=10_000)

    temp: Series[float] = pa.Field(nullable=True, ge=-60, le=130)
    dewp: Series[float] = pa.Field(nullable=True, ge=-80, le=100)
    humid: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    wind_dir: Series[float] = pa.Field(nullable=True, ge=0, le=360)
    wind_speed: Series[float] = pa.Field(nullable=True, ge=0)
    wind_gust: Series[float] = pa.Field(nullable=True, ge=0)
    precip: Series[float] = pa.Field(nullable=True, ge=0, le=20)
    pressure: Series[float] = pa.Field(nullable=True, ge=900, le=1100)
    visib: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    pressure_change_3h: Series[float] = pa.Field(nullable=True)
    pressure_change_12h: Series[float] = pa.Field(nullable=True)
    temp_change_24h: Series[float] = pa.Field(nullable=True)
    humid_change_3h: Series[float] = pa.Field(nullable=True)
    wind_speed_max_3h: Series[float] = pa.Field(nullable=True, ge=0)
    precip_3h: Series[float] = pa.Field(nullable=True, ge=0)
    visib_min_3h: Series[float] = pa.Field(nullable=True, ge=0)

    tail_leg_of_day: Series[float] = pa.Field(ge=0)
    minutes_since_tail_prev_departure: Series[float] = pa.Field(nullable=True, ge=0)
    origin_departures_in_hour: Series[float] = pa.Field(ge=1)
    carrier_departures_of_day: Series[float] = pa.Field(ge=1)
    tail_prev_departure_delay: Series[float] = pa.Field(nullable=True, ge=-24 * 60, le=24 * 60)

    plane_year: Series[float] = pa.Field(nullable=True, ge=1900, le=2100)
    plane_manufacturer: Series[str] = pa.Field(nullable=True)
    plane_engines: Series[float] = pa.Field(nullable=True, ge=0, le=8)
    plane_seats: Series[float] = pa.Field(nullable=True, ge=1, le=1000)
    dest_lat: Series[float] = pa.Field(nullable=True, ge=-90, le=90)
    dest_lon: Series[float] = pa.Field(nullable=True, ge=-180, le=180)
    dest_tz: Series[float] = pa.Field(nullable=True, ge=-12, le=14)

    dep_time: Series[float] = pa.Field(nullable=True, ge=0, le=2400)
    dep_delay: Series[float] = pa.Field(nullable=True, ge=-24 * 60, le=24 * 60)
    arr_time: Series[float] = pa.Field(nullable=True, ge=0, le=2400)
    arr_delay: Series[float] = pa.Field(nullable=True, ge=-24 * 60, le=24 * 60)
    air_time: Series[float] = pa.Field(nullable=True, gt=0, le=24 * 60)

    @pa.dataframe_check(error="sched_dep_time and sched_arr_time must be HHMM times")
    @classmethod
    def hhmm_times(cls, df: pd.DataFrame) -> pd.Series:
        return _hhmm(df["sched_dep_time"]) & _hhmm(df["sched_arr_time"])

    class Config:
        strict = True
        coerce = True
        unique = list(FLIGHT_KEY)  # noqa: RUF012 - pandera reads Config attributes


def flights_schema(carriers: Iterable[str], origins: Iterable[str]) -> pa.DataFrameSchema:
    """The hard checks on the joined table, with the categories known from the reference tables."""
    schema = Flights.to_schema()
    return schema.update_columns(
        {
            "carrier": {"checks": [*schema.columns["carrier"].checks, pa.Check.isin(sorted(carriers))]},
            "origin": {"checks": [*schema.columns["origin"].checks, pa.Check.isin(sorted(origins))]},
        }
    )


# Soft checks: they describe data a reviewer should know about but that the model copes with.
WARNINGS = pa.DataFrameSchema(
    {
        "dest_lat": pa.Column(float, nullable=False, required=True, description="destination not in airports"),
        "plane_year": pa.Column(float, nullable=False, description="tail number not in planes or no build year"),
        "temp": pa.Column(float, nullable=False, description="no weather observation at prediction time"),
        "wind_speed": pa.Column(float, pa.Check.le(100), nullable=True, description="implausible wind speed"),
        "tailnum": pa.Column(str, nullable=False, description="no tail number (usually cancelled)"),
    },
    strict=False,
    coerce=False,
)


# --- The service's request model, derived from the Flights schema ------------------------------

# What a caller must send: the schedule. The rest (weather, operations context) is optional and is
# treated as unknown when absent, exactly as the pipeline treats a missing observation.
# The schedule-derived context is always known (the published schedule) and the model never saw it
# missing, so it is required too; the weather and the previous leg's delay may be unknown.
REQUIRED_REQUEST_COLUMNS = (
    *(c for c in SCHEDULE_COLUMNS if c != "tailnum"),
    "tail_leg_of_day",
    "origin_departures_in_hour",
    "carrier_departures_of_day",
)
# What each request field means, for a caller reading the OpenAPI page. Weather is the origin's, as
# observed by the time of the prediction; "unknown" is an absent (or null) optional field.
REQUEST_DESCRIPTIONS = {
    "year": "year of the scheduled departure",
    "month": "month of the scheduled departure (1-12)",
    "day": "day of the month of the scheduled departure; year, month and day must be a calendar date",
    "sched_dep_time": "scheduled departure, local time at the origin, as HHMM (1730 is 5:30 pm)",
    "sched_arr_time": "scheduled arrival, local time at the destination, as HHMM",
    "carrier": "airline code (UA, DL, ...); one the reference tables do not list is refused",
    "flight": "flight number",
    "tailnum": "tail number of the aircraft, which gives its age, engines and seats; unknown if absent",
    "origin": "FAA code of the departure airport, one of the New York airports the model knows (EWR, JFK, LGA); "
    "one the reference tables do not list is refused",
    "dest": "FAA code of the destination airport; one the reference tables do not list is treated as unknown",
    "distance": "distance between the two airports, in miles",
    "temp": "temperature at the origin, in °F",
    "dewp": "dew point at the origin, in °F",
    "humid": "relative humidity at the origin, in %",
    "wind_dir": "wind direction at the origin, in degrees",
    "wind_speed": "wind speed at the origin, in mph",
    "wind_gust": "wind gust speed at the origin, in mph",
    "precip": "precipitation at the origin in the hour, in inches",
    "pressure": "sea-level pressure at the origin, in millibars",
    "visib": "visibility at the origin, in miles",
    "pressure_change_3h": "pressure minus the pressure 3 hours earlier, in millibars",
    "pressure_change_12h": "pressure minus the pressure 12 hours earlier, in millibars",
    "temp_change_24h": "temperature minus the temperature 24 hours earlier, in °F",
    "humid_change_3h": "relative humidity minus that of 3 hours earlier, in percentage points",
    "wind_speed_max_3h": "highest wind speed of the last three hourly observations, in mph",
    "precip_3h": "precipitation over the last three hourly observations, in inches",
    "visib_min_3h": "lowest visibility of the last three hourly observations, in miles",
    "tail_leg_of_day": "from the schedule: how many earlier NYC departures the same aircraft has that day "
    "(0 for its first, and without a tail number)",
    "minutes_since_tail_prev_departure": "from the schedule: minutes from the aircraft's previous scheduled NYC "
    "departure that day to this one; unknown for its first",
    "origin_departures_in_hour": "from the schedule: departures scheduled at the origin in the same clock hour, "
    "this one included",
    "carrier_departures_of_day": "from the schedule: the carrier's NYC departures scheduled that day, "
    "this one included",
    "tail_prev_departure_delay": "from operations: the departure delay in minutes of the aircraft's previous NYC "
    "departure that day as known at prediction time (its delay if it has left, else the minutes it has waited "
    "so far); unknown without an earlier leg or before that leg was due",
}


def _calendar_day(cls: type[Any], day: int, info: ValidationInfo) -> int:
    # Each of year, month and day can be in range while the date is not (30 February): the day is
    # then the field at fault. Year and month are validated first; if either failed, it says so.
    year, month = info.data.get("year"), info.data.get("month")
    if year is None or month is None:
        return day
    try:
        dt.date(year, month, day)
    except ValueError as exc:
        date = f"{year}-{month:02d}-{day:02d}"
        raise PydanticCustomError(
            "calendar_date", "{date} is not a calendar date ({reason})", {"date": date, "reason": str(exc)}
        ) from exc
    return day


def request_model(examples: Mapping[str, Any] | None = None) -> type[Any]:
    """A pydantic model of one flight as a caller knows it before departure, built from :class:`Flights`.

    Types, ranges and patterns come from the schema; each field's description from
    :data:`REQUEST_DESCRIPTIONS`; a day not in its month is refused as the day's error.
    """
    return schema_tools.request_model(
        "Flight",
        Flights.to_schema(),
        REQUEST_COLUMNS,
        REQUIRED_REQUEST_COLUMNS,
        REQUEST_DESCRIPTIONS,
        examples=examples,
        validators={"calendar_day": field_validator("day")(_calendar_day)},
        doc="One scheduled departure: the schedule and what it implies are required; the weather at the origin (its "
        "latest hourly observations) and the aircraft's previous leg are optional, and unknown when absent.",
    )
