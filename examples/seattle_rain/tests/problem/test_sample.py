"""The sample writer: the package's lines, a file per month, the same bytes every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightdelay.interface import SampleError
from flightdelay.problem import PROBLEM, Ingest, sample

OPTIONS = Ingest(window_days=7)


def test_every_day_of_the_source_lands_in_its_months_file_once(tmp_path: Path) -> None:
    sample.write_sample(tmp_path / "raw", sample.PERIODS)
    header, *days = sample.source_file().read_bytes().splitlines(keepends=True)
    written = [(tmp_path / "raw" / sample.month_file(p)).read_bytes() for p in sample.PERIODS]
    assert all(month.startswith(header) for month in written)
    assert b"".join(month[len(header) :] for month in written) == b"".join(days)
    assert (tmp_path / "raw" / sample.month_file(201502)).read_bytes().count(b"\n") == 1 + 28


def test_the_same_months_give_the_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        PROBLEM.write_sample(tmp_path / name, [201201, 201306])
    for period in (201201, 201306):
        first, second = (tmp_path / name / sample.month_file(period) for name in ("a", "b"))
        assert first.read_bytes() == second.read_bytes()


def test_the_layout_is_the_first_months_one_file_each(tmp_path: Path) -> None:
    recorded = PROBLEM.sample_layout(len(sample.PERIODS) - sample.HELD_BACK)
    assert recorded is not None and recorded[0] == 201201 and recorded[-1] == 201506
    assert PROBLEM.initial_periods() == recorded  # what a new project's data.dvc records
    assert PROBLEM.sample_layout(0) is None
    assert PROBLEM.sample_layout(len(sample.PERIODS) + 1) is None
    PROBLEM.write_sample(tmp_path / "raw", recorded[:3])
    assert len(list((tmp_path / "raw").rglob("*.csv"))) == 3
    assert PROBLEM.periods_present(tmp_path / "raw") == recorded[:3]


def test_adding_a_month_refuses_to_overwrite_or_to_invent_one(tmp_path: Path) -> None:
    PROBLEM.write_sample(tmp_path / "raw", [201201])
    assert PROBLEM.add_period(tmp_path / "raw", 201202) == [tmp_path / "raw" / "daily" / "2012-02.csv"]
    with pytest.raises(SampleError, match="refusing to overwrite"):
        PROBLEM.add_period(tmp_path / "raw", 201202)
    with pytest.raises(SampleError, match="2012-01 to 2015-12; got 2016-01"):
        PROBLEM.add_period(tmp_path / "raw", 201601)
    with pytest.raises(SampleError, match="already exists"):
        PROBLEM.write_sample(tmp_path / "raw", [201203])


def test_a_months_window_takes_its_neighbours_for_context_and_labels(tmp_path: Path) -> None:
    window = PROBLEM.sample_window(tmp_path / "absent", 201511, OPTIONS)
    assert window["date"].tolist()[0] == "2015-11-01" and window["date"].tolist()[-1] == "2015-11-30"
    assert window["precipitation_prev_day"].notna().all()  # 31 October is on file for the window
    assert window["precipitation_next_day"].notna().all()  # and so is 1 December
    # The last day of the sample has no next day: it is not an example.
    assert PROBLEM.sample_window(tmp_path / "absent", 201512, OPTIONS)["date"].tolist()[-1] == "2015-12-30"
