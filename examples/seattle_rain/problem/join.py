"""From raw days to one row per day: the recent days looked up by calendar, and tomorrow's precipitation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .schemas import DAY_COLUMNS, OUTCOME, RECENT_COLUMNS

log = logging.getLogger(__name__)


def _by_calendar(days: pd.DataFrame, column: str, offset: int) -> np.ndarray:
    """``column`` of the day ``offset`` days away (negative: earlier); NaN where that day is not on file."""
    series = pd.Series(days[column].to_numpy(dtype=float), index=days["_day"])
    return series.reindex(days["_day"] + pd.Timedelta(days=offset)).to_numpy(dtype=float)


def derive_days(raw: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """The joined table from raw days: ISO dates, the recent days, and the next day's precipitation.

    Lags look up the calendar day, so a gap in the files gives NaN, never another day's value. A day
    whose next day is not on file yet has no outcome: it is not an example until that day arrives.
    A date repeated in the files keeps its first row.
    """
    days = raw.assign(_day=pd.to_datetime(raw["date"], format="%Y/%m/%d"))
    deduped = days.drop_duplicates("_day", keep="first")
    if len(deduped) < len(days):
        log.info("dropped %d repeated days (the first row wins)", len(days) - len(deduped))
    days = deduped.sort_values("_day").reset_index(drop=True)
    days["date"] = days["_day"].dt.strftime("%Y-%m-%d")

    precipitation = days["precipitation"].to_numpy(dtype=float)
    days["precipitation_prev_day"] = _by_calendar(days, "precipitation", -1)
    days["precipitation_2_days_ago"] = _by_calendar(days, "precipitation", -2)
    days["temp_max_change_1d"] = days["temp_max"].to_numpy(dtype=float) - _by_calendar(days, "temp_max", -1)
    days["wind_change_1d"] = days["wind"].to_numpy(dtype=float) - _by_calendar(days, "wind", -1)
    recent = np.column_stack([precipitation] + [_by_calendar(days, "precipitation", -k) for k in range(1, window_days)])
    observed = ~np.isnan(recent)
    # Over the days of the window that are on file (the day itself always is).
    days["rain_days_recent"] = ((recent > 0) & observed).sum(axis=1).astype(float)
    days["precipitation_recent"] = np.where(observed, recent, 0.0).sum(axis=1)
    days[OUTCOME] = _by_calendar(days, "precipitation", 1)

    pending = days[OUTCOME].isna()
    if pending.any():
        log.info("%d day(s) without the next day on file are not examples yet", int(pending.sum()))
    return days.loc[~pending, [*DAY_COLUMNS, *RECENT_COLUMNS, OUTCOME]].reset_index(drop=True)
