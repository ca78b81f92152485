"""Row-wise features and the label of a flight: the same code runs in training and serving.

The features are defined once, over column arrays (:func:`feature_columns`): the pipeline passes it the
joined table's columns (millions of rows), the service a request's (one row, or a batch). Plain NumPy
keeps one row to microseconds, where a pandas frame costs milliseconds of fixed overhead.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from flightdelay.problem.schemas import CONTEXT_COLUMNS, WEATHER_COLUMNS

CATEGORICAL = ("carrier", "origin", "dest", "plane_manufacturer")
# Pressure and seat count are left out on purpose: pressure's level follows the season (its
# changes do not), and both made the held-out month worse in the experiments behind the README.
WEATHER_FEATURES = tuple(c for c in WEATHER_COLUMNS if c != "pressure")
NUMERIC = (
    "sched_dep_minutes",
    "sched_arr_minutes",
    "sched_block_minutes",
    "schedule_padding_minutes",
    "day_of_week",
    "days_to_holiday",
    "distance",
    "plane_age",
    "plane_engines",
    "dest_lat",
    "dest_lon",
    "temp_dewpoint_spread",
    *WEATHER_FEATURES,
    *CONTEXT_COLUMNS,
)
FEATURES = CATEGORICAL + NUMERIC
LABEL = "delayed"
#: The joined table's columns the features read: text (objects, None when missing) ...
TEXT_INPUTS = CATEGORICAL
#: ... and numbers (floats, NaN when missing).
NUMBER_INPUTS = tuple(
    dict.fromkeys(
        (
            "year",
            "month",
            "day",
            "sched_dep_time",
            "sched_arr_time",
            "dest_tz",
            "distance",
            "plane_year",
            "plane_engines",
            "dest_lat",
            "dest_lon",
            "temp",
            "dewp",
            *WEATHER_FEATURES,
            *CONTEXT_COLUMNS,
        )
    )
)
_HOLIDAY_HORIZON_DAYS = 30
_NYC_UTC_OFFSET_HOURS = -5  # the sample's origins; schedule times are local at each end
_CRUISE_MILES_PER_MINUTE = 8.0  # ~480 mph: the no-wind flying time the schedule pads

Columns = Mapping[str, np.ndarray]


def _minutes(hhmm: np.ndarray) -> np.ndarray:
    minutes: np.ndarray = (hhmm // 100) * 60 + hhmm % 100
    return minutes


@cache
def _holidays() -> np.ndarray:
    calendar = USFederalHolidayCalendar()
    return calendar.holidays(start="1990-01-01", end="2100-12-31").to_numpy(dtype="datetime64[D]")


def calendar_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The dates (``datetime64[D]``) of year, month and day columns (valid dates: the schemas check them)."""
    months = ((year - 1970) * 12 + (month - 1)).astype("int64").astype("datetime64[M]")
    days: np.ndarray = months.astype("datetime64[D]") + (day - 1).astype("int64").astype("timedelta64[D]")
    return days


def days_to_holiday(days: np.ndarray) -> np.ndarray:
    """Days from each date (``datetime64[D]``) to the nearest US federal holiday (before or after), capped at 30."""
    holidays = _holidays()
    right = np.clip(np.searchsorted(holidays, days), 0, len(holidays) - 1)
    left = np.clip(right - 1, 0, len(holidays) - 1)
    gap = np.minimum(np.abs(holidays[right] - days), np.abs(days - holidays[left])).astype(float)
    capped: np.ndarray = np.minimum(gap, _HOLIDAY_HORIZON_DAYS)
    return capped


def feature_columns(rows: Columns) -> dict[str, np.ndarray]:
    """The model inputs (:data:`FEATURES`, in order) of joined rows given as the columns of :func:`input_columns`."""
    days = calendar_days(rows["year"], rows["month"], rows["day"])
    out = {column: rows[column] for column in CATEGORICAL}
    out["sched_dep_minutes"] = _minutes(rows["sched_dep_time"])
    out["sched_arr_minutes"] = _minutes(rows["sched_arr_time"])
    # Scheduled gate-to-gate time, with the destination's time zone taken out; padding is what the
    # schedule allows beyond flying the distance, the slack that absorbs a late departure.
    zone_shift = (rows["dest_tz"] - _NYC_UTC_OFFSET_HOURS) * 60
    out["sched_block_minutes"] = (out["sched_arr_minutes"] - out["sched_dep_minutes"] - zone_shift) % (24 * 60)
    out["schedule_padding_minutes"] = out["sched_block_minutes"] - rows["distance"] / _CRUISE_MILES_PER_MINUTE
    # 1970-01-01 was a Thursday; Monday is 0.
    out["day_of_week"] = ((days.astype("int64") + 3) % 7).astype(float)
    out["days_to_holiday"] = days_to_holiday(days)
    out["distance"] = rows["distance"]
    out["plane_age"] = rows["year"] - rows["plane_year"]
    out["plane_engines"] = rows["plane_engines"]
    out["dest_lat"] = rows["dest_lat"]
    out["dest_lon"] = rows["dest_lon"]
    out["temp_dewpoint_spread"] = rows["temp"] - rows["dewp"]
    for column in (*WEATHER_FEATURES, *CONTEXT_COLUMNS):
        out[column] = rows[column]
    return {column: out[column] for column in FEATURES}


def text(values: np.ndarray) -> np.ndarray:
    """Values as Python strings in an object array, None where missing."""
    missing = pd.isna(values)
    out = np.asarray(values).astype(str).astype(object)
    out[missing] = None
    return out


def input_columns(flights: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns of the joined table that :func:`feature_columns` reads, as arrays of its types."""
    columns = {column: text(flights[column].to_numpy()) for column in TEXT_INPUTS}
    for column in NUMBER_INPUTS:
        columns[column] = flights[column].to_numpy(dtype=float, na_value=np.nan)
    return columns


def build_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Model inputs for each row of the joined table; works on one row as well as on millions."""
    return pd.DataFrame(feature_columns(input_columns(flights)), index=flights.index)


def label(flights: pd.DataFrame, delay_minutes: int) -> pd.Series:
    """1 when the flight arrived ``delay_minutes`` or more late, or never arrived (cancelled, diverted)."""
    arr_delay = flights["arr_delay"]
    return ((arr_delay >= delay_minutes) | arr_delay.isna()).astype("int64").rename(LABEL)
