"""Data tests: expectations on the real sample in data/raw and the joined table ingest wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flightdelay import settings
from flightdelay.io import dvc
from flightdelay.io.files import read_csv, read_parquet
from flightdelay.problem import PROBLEM, schemas
from flightdelay.stages import validate
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def days(params: settings.Params) -> pd.DataFrame:
    return read_parquet(ROOT / params.paths.joined)


def test_raw_data_matches_data_dvc() -> None:
    assert dvc.in_sync(ROOT, Path("data.dvc"))


def test_the_initial_months_are_tracked(params: settings.Params) -> None:
    assert PROBLEM.periods_present(ROOT / params.paths.raw) == PROBLEM.initial_periods()


def test_every_raw_file_holds_the_days_of_its_month(params: settings.Params) -> None:
    for path in sorted((ROOT / params.paths.raw).rglob("*.csv")):
        dates = pd.to_datetime(read_csv(path, schemas.RawDays)["date"], format="%Y/%m/%d")
        assert (dates.dt.strftime("%Y-%m") == path.stem).all(), path
        assert dates.is_unique and len(dates) == dates.iloc[0].days_in_month, path


def test_joined_table_passes_with_only_the_known_warning(days: pd.DataFrame, params: settings.Params) -> None:
    report = validate.check(days, PROBLEM.schema(ROOT / params.paths.raw), PROBLEM.warnings())
    assert report["errors"] == []
    # The first day of the data has no day before it; nothing else is missing.
    assert [(w["column"], w["failures"]) for w in report["warnings"]] == [("precipitation_prev_day", 1)]


def test_committed_report_matches_the_data(days: pd.DataFrame, params: settings.Params) -> None:
    report = json.loads((ROOT / params.paths.validation_report).read_text())
    assert report["rows"] == len(days)
    assert report["status"] == "passed"


def test_every_day_but_the_last_is_an_example(days: pd.DataFrame) -> None:
    calendar = pd.date_range(days["date"].iloc[0], days["date"].iloc[-1], freq="D").strftime("%Y-%m-%d")
    assert days["date"].tolist() == calendar.tolist()


def test_rain_follows_seattles_seasons(days: pd.DataFrame, params: settings.Params) -> None:
    # Wet winters, dry summers: every November to February has rain on 40% of its days or more, and on
    # average the wettest months (November to January) are far wetter than the driest (June to August).
    rainy = PROBLEM.labels_of(days, params.label).groupby(PROBLEM.period(days)).mean()
    month = rainy.index % 100
    assert (rainy[month.isin([11, 12, 1, 2])] >= 0.4).all()
    by_month = rainy.groupby(month).mean()
    assert by_month.loc[[11, 12, 1]].mean() > 2 * by_month.loc[[6, 7, 8]].mean()
