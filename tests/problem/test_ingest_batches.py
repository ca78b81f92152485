"""Ingest a flights file at a time: the batches are the whole join's rows, in its order, whatever the files hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from flightdelay.io.files import RawDataError, read_csvs
from flightdelay.problem import PROBLEM, Ingest, sample, schemas

OPTIONS = Ingest(horizon_minutes=120)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three months of the sample: March's first flights need February's last weather hours."""
    raw = tmp_path_factory.mktemp("raw")
    sample.write_sample(raw, [2, 3, 4])
    for name in PROBLEM.reference_files:  # the sample database's tables, as get-data takes them
        shutil.copyfile(sample.package_data_dir() / name, raw / name)
    return raw


def _whole(raw: Path) -> pd.DataFrame:
    """Every flights file joined at once, as ingest did before it took a file at a time."""
    flights = read_csvs(sorted((raw / "flights").glob("*.csv")), schemas.RawFlights)
    weather = read_csvs(sorted((raw / "weather").glob("*.csv")), schemas.RawWeather)
    return PROBLEM._join(raw, flights, weather, OPTIONS)


def _months(batch: pd.DataFrame) -> list[int]:
    return sorted(set(PROBLEM.period(batch)))


def test_a_batch_a_month_and_together_the_whole_join(raw: Path) -> None:
    batches = list(PROBLEM.ingest_batches(raw, OPTIONS))
    assert [_months(batch) for batch in batches] == [[201302], [201303], [201304]]
    whole = _whole(raw)
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), whole)
    # The weather lags of a month's first hours come from the month before: not missing at the seam.
    march = batches[1]
    first_day = march[(march["day"] == 1) & (march["sched_dep_time"] < 800)]
    assert first_day["temp_change_24h"].notna().all()


def test_files_whose_days_interleave_are_joined_together(raw: Path, tmp_path: Path) -> None:
    """March split into odd and even days, named so that April's file sorts between them."""
    mixed = tmp_path / "raw"
    for kind in ("weather", "flights"):
        (mixed / kind).mkdir(parents=True)
    for name in PROBLEM.reference_files:
        (mixed / name).write_bytes((raw / name).read_bytes())
    for path in (raw / "weather").glob("*.csv"):
        (mixed / "weather" / path.name).write_bytes(path.read_bytes())
    flights = {path.name: pd.read_csv(path, keep_default_na=False) for path in (raw / "flights").glob("*.csv")}
    march = flights.pop("2013-03.csv")
    for name, frame in flights.items():
        frame.to_csv(mixed / "flights" / name, index=False)
    march[march["day"] % 2 == 1].to_csv(mixed / "flights" / "2013-03-a.csv", index=False)
    march[march["day"] % 2 == 0].to_csv(mixed / "flights" / "2013-05-even-days-of-march.csv", index=False)

    batches = list(PROBLEM.ingest_batches(mixed, OPTIONS))

    assert [_months(batch) for batch in batches] == [[201302], [201303], [201304]]
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), _whole(raw))


def test_a_bad_flights_file_is_named(raw: Path, tmp_path: Path) -> None:
    broken = tmp_path / "raw"
    broken.mkdir()
    for path in raw.rglob("*"):
        if path.is_file():
            (broken / path.relative_to(raw)).parent.mkdir(parents=True, exist_ok=True)
            (broken / path.relative_to(raw)).write_bytes(path.read_bytes())
    (broken / "flights" / "2013-03.csv").write_text("carrier,flight\nUA,1\n")
    with pytest.raises(RawDataError, match=r"2013-03\.csv does not match RawFlights"):
        list(PROBLEM.ingest_batches(broken, OPTIONS))
    (broken / "flights" / "2013-03.csv").write_text("")
    with pytest.raises(RawDataError, match=r"2013-03\.csv: file is empty"):
        list(PROBLEM.ingest_batches(broken, OPTIONS))
