"""Row-wise features and the label of a flight: the same code runs in training and serving."""

from __future__ import annotations

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
_HOLIDAY_HORIZON_DAYS = 30
_NYC_UTC_OFFSET_HOURS = -5  # the sample's origins; schedule times are local at each end
_CRUISE_MILES_PER_MINUTE = 8.0  # ~480 mph: the no-wind flying time the schedule pads


def _minutes(hhmm: pd.Series) -> pd.Series:
    return ((hhmm // 100) * 60 + hhmm % 100).astype(float)


@cache
def _holidays() -> np.ndarray:
    calendar = USFederalHolidayCalendar()
    return calendar.holidays(start="1990-01-01", end="2100-12-31").to_numpy(dtype="datetime64[D]")


def days_to_holiday(dates: pd.Series) -> np.ndarray:
    """Days to the nearest US federal holiday (before or after), capped at 30."""
    days = dates.to_numpy(dtype="datetime64[D]")
    holidays = _holidays()
    right = np.clip(np.searchsorted(holidays, days), 0, len(holidays) - 1)
    left = np.clip(right - 1, 0, len(holidays) - 1)
    gap = np.minimum(np.abs(holidays[right] - days), np.abs(days - holidays[left])).astype(float)
    capped: np.ndarray = np.minimum(gap, _HOLIDAY_HORIZON_DAYS)
    return capped


def build_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Model inputs for each row of the joined table; works on one row as well as on millions."""
    dates = pd.to_datetime(flights[["year", "month", "day"]])
    out = pd.DataFrame(index=flights.index)
    for column in CATEGORICAL:
        out[column] = flights[column].astype("str").where(flights[column].notna(), None)
    out["sched_dep_minutes"] = _minutes(flights["sched_dep_time"])
    out["sched_arr_minutes"] = _minutes(flights["sched_arr_time"])
    # Scheduled gate-to-gate time, with the destination's time zone taken out; padding is what the
    # schedule allows beyond flying the distance, the slack that absorbs a late departure.
    zone_shift = (flights["dest_tz"].astype(float) - _NYC_UTC_OFFSET_HOURS) * 60
    out["sched_block_minutes"] = (out["sched_arr_minutes"] - out["sched_dep_minutes"] - zone_shift) % (24 * 60)
    out["schedule_padding_minutes"] = (
        out["sched_block_minutes"] - flights["distance"].astype(float) / _CRUISE_MILES_PER_MINUTE
    )
    out["day_of_week"] = dates.dt.day_of_week.astype(float)
    out["days_to_holiday"] = days_to_holiday(dates)
    out["distance"] = flights["distance"].astype(float)
    out["plane_age"] = (flights["year"] - flights["plane_year"]).astype(float)
    out["plane_engines"] = flights["plane_engines"].astype(float)
    out["dest_lat"] = flights["dest_lat"].astype(float)
    out["dest_lon"] = flights["dest_lon"].astype(float)
    out["temp_dewpoint_spread"] = (flights["temp"] - flights["dewp"]).astype(float)
    for column in (*WEATHER_FEATURES, *CONTEXT_COLUMNS):
        out[column] = flights[column].astype(float)
    return out[list(FEATURES)]


def label(flights: pd.DataFrame, delay_minutes: int) -> pd.Series:
    """1 when the flight arrived ``delay_minutes`` or more late, or never arrived (cancelled, diverted)."""
    arr_delay = flights["arr_delay"]
    return ((arr_delay >= delay_minutes) | arr_delay.isna()).astype("int64").rename(LABEL)
