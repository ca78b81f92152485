"""Row-wise features and the label of a day: the same code runs in training and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schemas import OUTCOME, RECENT_COLUMNS

CATEGORICAL = ("weather", "season")
NUMERIC = (
    "day_of_year_sin",
    "day_of_year_cos",
    "precipitation",
    "temp_max",
    "temp_min",
    "temp_range",
    "wind",
    *RECENT_COLUMNS,
)
FEATURES = CATEGORICAL + NUMERIC
LABEL = "rain_tomorrow"
# Meteorological seasons of the northern hemisphere, by month.
_SEASON_MONTHS = {"winter": (12, 1, 2), "spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11)}
SEASONS = {month: season for season, months in _SEASON_MONTHS.items() for month in months}
_YEAR_DAYS = 365.25


def build_features(days: pd.DataFrame) -> pd.DataFrame:
    """Model inputs for each row of the joined table; works on one row as well as on thousands."""
    dates = pd.to_datetime(days["date"], format="%Y-%m-%d")
    out = pd.DataFrame(index=days.index)
    out["weather"] = days["weather"].astype("str").where(days["weather"].notna(), None)
    out["season"] = dates.dt.month.map(SEASONS).astype("str")
    # The time of year as a point on a circle: 31 December is next to 1 January.
    angle = 2 * np.pi * dates.dt.day_of_year.to_numpy(dtype=float) / _YEAR_DAYS
    out["day_of_year_sin"] = np.sin(angle)
    out["day_of_year_cos"] = np.cos(angle)
    for column in ("precipitation", "temp_max", "temp_min", "wind", *RECENT_COLUMNS):
        out[column] = days[column].astype(float)
    # A small daily range means a cloudy day, which often comes before rain.
    out["temp_range"] = (days["temp_max"] - days["temp_min"]).astype(float)
    return out[list(FEATURES)]


def label(days: pd.DataFrame, min_precipitation_mm: float) -> pd.Series:
    """1 when the next day's precipitation is above ``min_precipitation_mm``."""
    return (days[OUTCOME] > min_precipitation_mm).astype("int64").rename(LABEL)
