"""Bad raw data: each kind gets an error that names the file, the column and the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightdelay.io.files import RawDataError, read_csv
from flightdelay.problem import schemas
from tests.problem import factories


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "2013-01.csv"
    path.write_text(text)
    return path


def good_csv() -> str:
    return factories.flights(3).to_csv(index=False, na_rep="NA")


def test_good_file_is_typed(tmp_path: Path) -> None:
    frame = read_csv(write(tmp_path, good_csv()), schemas.RawFlights)
    assert str(frame["sched_dep_time"].dtype) == "int64"
    assert len(frame) == 3


def test_missing_column(tmp_path: Path) -> None:
    csv = factories.flights(3).drop(columns=["carrier"]).to_csv(index=False)
    with pytest.raises(
        RawDataError, match=r"2013-01\.csv does not match RawFlights:\n  column 'carrier', check missing column"
    ):
        read_csv(write(tmp_path, csv), schemas.RawFlights)


def test_unexpected_column(tmp_path: Path) -> None:
    csv = factories.flights(3).assign(gate="B12").to_csv(index=False)
    with pytest.raises(RawDataError, match="column 'gate', check unexpected column"):
        read_csv(write(tmp_path, csv), schemas.RawFlights)


def test_wrong_type(tmp_path: Path) -> None:
    csv = factories.flights(3, sched_dep_time=["600", "7am", "800"]).to_csv(index=False)
    with pytest.raises(
        RawDataError, match=r"column 'sched_dep_time', check coerce_dtype\('int64'\): 1 failing \(e\.g\. 7am\)"
    ):
        read_csv(write(tmp_path, csv), schemas.RawFlights)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match="file is empty"):
        read_csv(write(tmp_path, ""), schemas.RawFlights)


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match="no rows"):
        read_csv(write(tmp_path, good_csv().splitlines()[0] + "\n"), schemas.RawFlights)


def test_truncated_file(tmp_path: Path) -> None:
    text = good_csv()
    with pytest.raises(RawDataError, match=r"2013-01\.csv: cannot be parsed.*truncated"):
        read_csv(write(tmp_path, text[: len(text) - 40]), schemas.RawFlights)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match="file not found"):
        read_csv(tmp_path / "nope.csv", schemas.RawFlights)
