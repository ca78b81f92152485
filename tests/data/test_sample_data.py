"""Data tests: expectations on the real sample in data/raw and the joined table ingest wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flightdelay import settings
from flightdelay.io import dvc
from flightdelay.io.files import read_csv, read_parquet
from flightdelay.problem import PROBLEM, sample, schemas
from flightdelay.stages import validate
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def flights(params: settings.Params) -> pd.DataFrame:
    return read_parquet(ROOT / params.paths.joined)


def test_raw_data_matches_data_dvc() -> None:
    assert dvc.in_sync(ROOT, Path("data.dvc"))


def test_january_to_october_are_tracked(params: settings.Params) -> None:
    assert sample.months_present(ROOT / params.paths.raw) == list(range(1, 11))


def test_every_raw_file_matches_its_schema(params: settings.Params) -> None:
    raw = ROOT / params.paths.raw
    for path in sorted((raw / "flights").glob("*.csv")):
        frame = read_csv(path, schemas.RawFlights)
        assert frame["month"].nunique() == 1, path
    for path in sorted((raw / "weather").glob("*.csv")):
        read_csv(path, schemas.RawWeather)


def test_joined_table_passes_with_only_the_known_warnings(flights: pd.DataFrame, params: settings.Params) -> None:
    raw = ROOT / params.paths.raw
    report = validate.check(flights, PROBLEM.schema(raw), PROBLEM.warnings())
    assert report["errors"] == []
    warned = {w["column"] for w in report["warnings"]}
    assert warned <= {"dest_lat", "plane_year", "temp", "wind_speed", "tailnum"}
    # Destinations missing from airports.csv are the four known ones (Puerto Rico, Virgin Islands).
    unknown = set(flights.loc[flights["dest_lat"].isna(), "dest"])
    assert unknown <= {"BQN", "PSE", "SJU", "STT"}


def test_committed_report_matches_the_data(flights: pd.DataFrame, params: settings.Params) -> None:
    report = json.loads((ROOT / params.paths.validation_report).read_text())
    assert report["rows"] == len(flights)
    assert report["status"] == "passed"


def test_one_row_per_flight_and_weather_for_nearly_all(flights: pd.DataFrame) -> None:
    assert not flights.duplicated(list(schemas.FLIGHT_KEY)).any()
    assert flights["temp"].notna().mean() > 0.99
    assert flights["plane_year"].notna().mean() > 0.75


def test_delay_rate_is_plausible_per_month(flights: pd.DataFrame) -> None:
    from flightdelay.problem.features import label

    rates = label(flights, 15).groupby(flights["month"]).mean()
    assert rates.between(0.12, 0.45).all(), rates.to_dict()
    # Summer is worse than autumn in 2013 NYC: the drift the monitoring issue builds on.
    assert rates[7] > rates[10]
