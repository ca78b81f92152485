"""Tiny hand-made frames in the shape of each table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flightdelay.problem import schemas


def flights(n: int = 4, **overrides: object) -> pd.DataFrame:
    """Raw flights on 2013-01-01 from EWR, one every hour from 06:00, same aircraft."""
    base = {
        "year": [2013] * n,
        "month": [1] * n,
        "day": [1] * n,
        "dep_time": [600.0 + 100 * i for i in range(n)],
        "sched_dep_time": [600 + 100 * i for i in range(n)],
        "dep_delay": [0.0] * n,
        "arr_time": [800.0 + 100 * i for i in range(n)],
        "sched_arr_time": [800 + 100 * i for i in range(n)],
        "arr_delay": [0.0] * n,
        "carrier": ["UA"] * n,
        "flight": list(range(1, n + 1)),
        "tailnum": ["N14228"] * n,
        "origin": ["EWR"] * n,
        "dest": ["ORD"] * n,
        "air_time": [120.0] * n,
        "distance": [719.0] * n,
        "hour": [6 + i for i in range(n)],
        "minute": [0] * n,
        "time_hour": ["2013-01-01T11:00:00Z"] * n,
    }
    frame = pd.DataFrame(base)
    for key, value in overrides.items():
        frame[key] = value
    return frame


def weather(hours: range = range(24), origin: str = "EWR", **overrides: object) -> pd.DataFrame:
    n = len(hours)
    frame = pd.DataFrame(
        {
            "origin": [origin] * n,
            "year": [2013] * n,
            "month": [1] * n,
            "day": [1] * n,
            "hour": list(hours),
            "temp": np.linspace(30, 40, n),
            "dewp": [20.0] * n,
            "humid": [60.0] * n,
            "wind_dir": [270.0] * n,
            "wind_speed": [10.0] * n,
            "wind_gust": [np.nan] * n,
            "precip": [0.0] * n,
            "pressure": np.linspace(1010, 1020, n),
            "visib": [10.0] * n,
            "time_hour": ["2013-01-01T06:00:00Z"] * n,
        }
    )
    for key, value in overrides.items():
        frame[key] = value
    return frame


def planes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tailnum": ["N14228"],
            "year": [1999.0],
            "type": ["Fixed wing multi engine"],
            "manufacturer": ["BOEING"],
            "model": ["737-824"],
            "engines": [2.0],
            "seats": [149.0],
            "speed": [np.nan],
            "engine": ["Turbo-fan"],
        }
    )


def airports() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "faa": ["EWR", "ORD"],
            "name": ["Newark", "Chicago O'Hare"],
            "lat": [40.69, 41.98],
            "lon": [-74.17, -87.90],
            "alt": [18.0, 668.0],
            "tz": [-5.0, -6.0],
            "dst": ["A", "A"],
            "tzone": ["America/New_York", "America/Chicago"],
        }
    )


def joined(n: int = 4, horizon_minutes: int = 120) -> pd.DataFrame:
    """The joined table ingest would write for :func:`flights` and :func:`weather`."""
    from flightdelay.problem.join import derive_weather, join_sources

    derived, _ = derive_weather(weather())
    frame = join_sources(flights(n), derived, planes(), airports(), horizon_minutes)
    return schemas.Flights.validate(frame)
