"""From raw days to the joined table: calendar lags, the recent window, the next day's outcome, the label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from flightdelay.problem import PROBLEM, Ingest, Label, join, schemas

WEEK = 7


def raw_days(dates: list[str], precipitation: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": dates,
            "precipitation": precipitation,
            "temp_max": [10.0 + i for i in range(len(dates))],
            "temp_min": [5.0] * len(dates),
            "wind": [3.0] * len(dates),
            "weather": ["rain"] * len(dates),
        }
    )


def test_lags_look_up_the_calendar_day_so_a_gap_gives_unknown() -> None:
    # 3 January is missing: 4 January's day before is unknown, not 2 January.
    days = raw_days(["2013/01/01", "2013/01/02", "2013/01/04", "2013/01/05"], [1.0, 2.0, 4.0, 0.0])
    joined = join.derive_days(days, WEEK)
    assert joined["date"].tolist() == ["2013-01-01", "2013-01-04"]  # a day without its next day waits
    assert np.isnan(joined["precipitation_prev_day"].iloc[1])
    assert joined["precipitation_2_days_ago"].iloc[1] == 2.0
    assert joined["precipitation_next_day"].tolist() == [2.0, 0.0]
    assert np.isnan(joined["temp_max_change_1d"].iloc[1])


def test_the_recent_window_counts_and_sums_the_days_on_file() -> None:
    dates = [f"2013/03/{d:02d}" for d in range(1, 11)]
    days = raw_days(dates, [0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0, 5.0, 0.0])
    joined = join.derive_days(days, 3).set_index("date")
    assert joined.loc["2013-03-05", "rain_days_recent"] == 2.0  # 3, 4, 5 March: two wet days
    assert joined.loc["2013-03-05", "precipitation_recent"] == 5.0
    assert joined.loc["2013-03-01", "rain_days_recent"] == 0.0  # only the day itself is on file


def test_a_repeated_day_keeps_its_first_row() -> None:
    days = raw_days(["2013/01/01", "2013/01/01", "2013/01/02"], [1.0, 9.0, 0.0])
    joined = join.derive_days(days, WEEK)
    assert joined["precipitation"].tolist() == [1.0]


def test_the_label_is_rain_above_the_threshold_the_next_day() -> None:
    days = raw_days([f"2013/01/0{d}" for d in range(1, 5)], [0.0, 0.3, 0.0, 2.0])
    joined = join.derive_days(days, WEEK)
    assert PROBLEM.labels_of(joined, Label(min_precipitation_mm=0.0)).tolist() == [1, 0, 1]
    assert PROBLEM.labels_of(joined, Label(min_precipitation_mm=0.5)).tolist() == [0, 0, 1]
    outcome = pd.Series([0.0, 0.3, None])
    labelled = PROBLEM.label_of_outcome(outcome, Label(min_precipitation_mm=0.0))
    assert labelled.iloc[:2].tolist() == [0.0, 1.0] and np.isnan(labelled.iloc[2])


def test_joined_days_pass_the_schema_and_a_colder_maximum_fails_it() -> None:
    joined = join.derive_days(raw_days(["2013/01/01", "2013/01/02"], [1.0, 0.0]), WEEK)
    schema = PROBLEM.schema(Path("no-raw"))  # the problem's schema reads no reference file
    schema.validate(joined)
    with pytest.raises(pa.errors.SchemaErrors, match="temp_min must not be above temp_max"):
        schema.validate(joined.assign(temp_min=50.0), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors, match="isin"):
        schema.validate(joined.assign(weather="hail"), lazy=True)


def test_ingest_reads_the_monthly_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    PROBLEM.write_sample(raw, [201201, 201202])
    joined = PROBLEM.ingest(raw, Ingest(window_days=WEEK))
    assert len(joined) == 31 + 29 - 1  # 2012 is a leap year; 29 February waits for 1 March
    assert list(joined.columns) == [*schemas.REQUEST_COLUMNS, schemas.OUTCOME]
