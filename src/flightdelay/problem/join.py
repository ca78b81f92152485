"""Joining the sources into one row per flight: weather, aircraft, destination and schedule context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flightdelay.problem.features import text
from flightdelay.problem.schemas import WEATHER_KEY

# Which past hours summarise the recent weather: the hour itself and the two before it.
_RECENT_HOURS = (1, 2)


def _hourly_index(weather: pd.DataFrame) -> pd.DatetimeIndex:
    stamps = pd.to_datetime(weather[["year", "month", "day", "hour"]])
    return pd.DatetimeIndex(stamps)


def _shifted(weather: pd.DataFrame, column: str, hours: int) -> np.ndarray:
    """``column`` as observed ``hours`` earlier at the same origin (NaN where no observation)."""
    series = pd.Series(weather[column].to_numpy(), index=pd.MultiIndex.from_arrays([weather["origin"], weather["_ts"]]))
    past = pd.MultiIndex.from_arrays([weather["origin"], weather["_ts"] - pd.Timedelta(hours=hours)])
    return series.reindex(past).to_numpy(dtype=float)


def derive_weather(weather: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Add trend and recent-window columns to hourly weather; return it and the duplicates dropped.

    The source repeats a few hours (the autumn clock change); the first observation wins.
    Lags look up the observation exactly ``h`` hours earlier, so gaps in the series give NaN, not
    a value from the wrong hour.
    """
    deduped = weather.drop_duplicates(list(WEATHER_KEY), keep="first")
    dropped = len(weather) - len(deduped)
    out = deduped.reset_index(drop=True).copy()
    out["_ts"] = _hourly_index(out)
    out["pressure_change_3h"] = out["pressure"] - _shifted(out, "pressure", 3)
    out["pressure_change_12h"] = out["pressure"] - _shifted(out, "pressure", 12)
    out["temp_change_24h"] = out["temp"] - _shifted(out, "temp", 24)
    out["humid_change_3h"] = out["humid"] - _shifted(out, "humid", 3)
    wind = np.column_stack(
        [out["wind_speed"].to_numpy(dtype=float)] + [_shifted(out, "wind_speed", h) for h in _RECENT_HOURS]
    )
    precip = np.column_stack(
        [out["precip"].to_numpy(dtype=float)] + [_shifted(out, "precip", h) for h in _RECENT_HOURS]
    )
    visib = np.column_stack([out["visib"].to_numpy(dtype=float)] + [_shifted(out, "visib", h) for h in _RECENT_HOURS])
    with np.errstate(all="ignore"):
        out["wind_speed_max_3h"] = _nan_reduce(np.nanmax, wind)
        out["precip_3h"] = _nan_reduce(np.nansum, precip, all_nan=np.nan)
        out["visib_min_3h"] = _nan_reduce(np.nanmin, visib)
    return out.drop(columns=["_ts", "time_hour"]), dropped


def _nan_reduce(func: object, values: np.ndarray, all_nan: float = np.nan) -> np.ndarray:
    """Row-wise reduction ignoring NaN; rows that are all NaN give ``all_nan``."""
    empty = np.isnan(values).all(axis=1)
    safe = np.where(empty[:, None], 0.0, values)
    reduced = func(safe, axis=1)  # type: ignore[operator]
    return np.where(empty, all_nan, reduced)


def schedule_context(flights: pd.DataFrame, horizon_minutes: int) -> pd.DataFrame:
    """Context known ``horizon_minutes`` before the scheduled departure.

    From the published schedule, known weeks ahead:

    * ``tail_leg_of_day``: how many earlier NYC departures the same aircraft has that day (0 without
      a tail number);
    * ``minutes_since_tail_prev_departure``: scheduled minutes since its previous NYC departure;
    * ``origin_departures_in_hour``: departures scheduled at the origin in the same clock hour;
    * ``carrier_departures_of_day``: the carrier's NYC departures scheduled that day.

    From operations, as observed at prediction time:

    * ``tail_prev_departure_delay``: the departure delay of the aircraft's previous NYC departure
      that day, as far as it was known then: its delay if it had left, else the minutes it had
      waited so far (a lower bound). NaN when there is no earlier leg, or it was not yet due.
    """
    out = flights.copy()
    minutes = (out["sched_dep_time"] // 100) * 60 + out["sched_dep_time"] % 100
    order = out.assign(_m=minutes).sort_values(["tailnum", "year", "month", "day", "_m"], kind="stable")
    by_tail = order.groupby(["tailnum", "year", "month", "day"], sort=False, dropna=True)
    leg = by_tail.cumcount().astype(float)
    prev_sched = by_tail["_m"].shift(1)
    since = (order["_m"] - prev_sched).astype(float)
    # At prediction time t the previous leg has waited t - prev_sched minutes; if it had already
    # left (prev_sched + dep_delay <= t) its whole delay is known. Cancelled legs never leave.
    waited = (order["_m"] - horizon_minutes - prev_sched).astype(float)
    prev_delay = by_tail["dep_delay"].shift(1).astype(float)
    observed = np.where(prev_delay.isna(), waited, np.minimum(prev_delay, waited))
    observed = np.where(waited < 0, np.nan, observed)
    # No tail number (in the data: mostly flights that were later cancelled) must not look different
    # from a first leg, or the model learns the cancellation from the missing value.
    out["tail_leg_of_day"] = leg.reindex(out.index).fillna(0.0)
    out["minutes_since_tail_prev_departure"] = since.reindex(out.index)
    out["tail_prev_departure_delay"] = pd.Series(observed, index=order.index).reindex(out.index)
    hour = out["sched_dep_time"] // 100
    out["origin_departures_in_hour"] = (
        out.groupby([out["origin"], out["year"], out["month"], out["day"], hour])["flight"]
        .transform("size")
        .astype(float)
    )
    out["carrier_departures_of_day"] = (
        out.groupby(["carrier", "year", "month", "day"])["flight"].transform("size").astype(float)
    )
    return out


AIRCRAFT = {
    "year": "plane_year",
    "manufacturer": "plane_manufacturer",
    "engines": "plane_engines",
    "seats": "plane_seats",
}
DESTINATION = {"lat": "dest_lat", "lon": "dest_lon", "tz": "dest_tz"}


@dataclass(frozen=True)
class Lookup:
    """A reference table keyed by one column, as a left join over column arrays: one row costs microseconds.

    The values are arrays of the features' types: numbers as floats (NaN when missing), text as objects
    (None when missing).
    """

    positions: dict[Any, int]
    values: dict[str, np.ndarray]

    @classmethod
    def of(cls, table: pd.DataFrame, key: str, columns: Mapping[str, str]) -> Lookup:
        """``columns`` of ``table`` (renamed as the mapping says) by its ``key``, which must not repeat."""
        repeated = table[key][table[key].duplicated()]
        if len(repeated):
            raise ValueError(f"{key} repeats in a reference table: {sorted(map(str, repeated.unique()))[:5]}")
        values = {}
        for column, name in columns.items():
            series = table[column]
            numeric = pd.api.types.is_numeric_dtype(series)
            values[name] = series.to_numpy(dtype=float, na_value=np.nan) if numeric else text(series.to_numpy())
        return cls({key: position for position, key in enumerate(table[key].to_numpy())}, values)

    def join(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        """The values at each of ``keys``; missing where the table has no such key."""
        at = np.fromiter((self.positions.get(key, -1) for key in keys), dtype=np.intp, count=len(keys))
        missing = at < 0
        joined = {}
        for name, values in self.values.items():
            taken = values[at]
            taken[missing] = None if taken.dtype == object else np.nan
            joined[name] = taken
        return joined


def reference_columns(
    tailnum: np.ndarray, dest: np.ndarray, aircraft: Lookup, destinations: Lookup
) -> dict[str, np.ndarray]:
    """The aircraft (by tail number) and the destination (by FAA code) of each flight; unknown ones missing.

    Ingest and the service both call this, so a served flight is looked up exactly as a trained one.
    """
    return aircraft.join(tailnum) | destinations.join(dest)


def attach_references(flights: pd.DataFrame, planes: pd.DataFrame, airports: pd.DataFrame) -> pd.DataFrame:
    """Add the aircraft and destination columns of :func:`reference_columns` to the joined table."""
    references = reference_columns(
        flights["tailnum"].to_numpy(),
        flights["dest"].to_numpy(),
        Lookup.of(planes, "tailnum", AIRCRAFT),
        Lookup.of(airports, "faa", DESTINATION),
    )
    return flights.assign(**references)


def join_sources(
    flights: pd.DataFrame,
    weather: pd.DataFrame,
    planes: pd.DataFrame,
    airports: pd.DataFrame,
    horizon_minutes: int,
) -> pd.DataFrame:
    """One row per flight: the origin's weather as known at prediction time, its aircraft, its destination.

    The prediction is made ``horizon_minutes`` before the scheduled departure; the weather is the
    last hourly observation by then (and the trends and windows that end with it), never a later one.
    ``weather`` is the output of :func:`derive_weather`. Left joins throughout: a flight without a
    match keeps NaN there, and validate reports how many.
    """
    minutes = (flights["sched_dep_time"] // 100) * 60 + flights["sched_dep_time"] % 100
    known_at = pd.to_datetime(flights[["year", "month", "day"]]) + pd.to_timedelta(minutes - horizon_minutes, unit="m")
    observed = pd.DataFrame(
        {
            "_year": known_at.dt.year,
            "_month": known_at.dt.month,
            "_day": known_at.dt.day,
            "_hour": known_at.dt.hour,
        },
        index=flights.index,
    )
    weather_keys = {column: f"_{column}" for column in WEATHER_KEY if column != "origin"}
    joined = (
        pd.concat([flights.drop(columns=["time_hour"]), observed], axis=1)
        .merge(
            weather.rename(columns=weather_keys),
            on=["origin", *weather_keys.values()],
            how="left",
            validate="many_to_one",
        )
        .drop(columns=list(weather_keys.values()))
    )
    joined = attach_references(joined, planes, airports)
    joined = schedule_context(joined, horizon_minutes)
    joined = joined.drop(columns=["hour", "minute"])
    joined = joined.sort_values(
        ["year", "month", "day", "sched_dep_time", "carrier", "flight", "origin"], kind="stable"
    )
    return joined.reset_index(drop=True)
