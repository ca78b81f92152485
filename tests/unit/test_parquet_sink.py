"""A table written a batch at a time is the file its whole frame makes, byte for byte; bad batches leave nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from flightdelay.io.files import (
    ROW_GROUP_ROWS,
    read_parquet,
    read_parquet_batches,
    write_parquet,
    write_parquet_batches,
    write_parquet_parts,
)


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "day": rng.integers(1, 31, rows),
            "carrier": pd.Series(rng.choice(["UA", "AA", "B6", None], rows), dtype=object),
            "delay": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(10, 30, rows)),
        }
    )


def _in_batches(frame: pd.DataFrame, sizes: list[int]) -> Iterator[pd.DataFrame]:
    start = 0
    for size in sizes:
        yield frame.iloc[start : start + size]
        start += size
    assert start == len(frame)


@pytest.mark.parametrize(
    ("rows", "sizes"),
    [
        (0, [0]),
        (1_000, [1_000]),
        (1_000, [1, 300, 699]),
        # Across a row group: batches that straddle it, and one that holds a whole group and more.
        (ROW_GROUP_ROWS + 70_000, [400_000, 700_000, ROW_GROUP_ROWS + 70_000 - 1_100_000]),
        (ROW_GROUP_ROWS + 70_000, [ROW_GROUP_ROWS + 20_000, 50_000]),
    ],
)
def test_batches_make_the_whole_frames_file(tmp_path: Path, rows: int, sizes: list[int]) -> None:
    frame = _table(rows)
    write_parquet(tmp_path / "whole.parquet", frame)

    written = write_parquet_batches(tmp_path / "batched.parquet", _in_batches(frame, sizes))

    assert written == rows
    assert (tmp_path / "batched.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    groups = pq.ParquetFile(tmp_path / "batched.parquet").metadata.num_row_groups
    assert groups == max(1, -(-rows // ROW_GROUP_ROWS))  # an empty table is one empty row group


def test_a_batch_with_a_column_all_missing_or_without_a_missing_number_takes_the_first_batchs_types(
    tmp_path: Path,
) -> None:
    first = _table(100)
    no_carrier = _table(50, seed=1).assign(carrier=None)  # pandas: an object column of None, Arrow: null
    whole_numbers = _table(50, seed=2).assign(delay=7)  # int64, where the first batch has floats
    write_parquet_batches(tmp_path / "t.parquet", [first, no_carrier, whole_numbers])

    write_parquet(tmp_path / "whole.parquet", pd.concat([first, no_carrier, whole_numbers], ignore_index=True))
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), read_parquet(tmp_path / "whole.parquet"))
    assert read_parquet(tmp_path / "t.parquet")["delay"].dtype == np.float64


def _failing(batches: list[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield from batches
    raise RuntimeError("the source broke")


@pytest.mark.parametrize(
    ("batches", "error", "message"),
    [
        ([_table(10), _table(10)[["delay", "day", "carrier"]]], ValueError, "columns differ from the first batch's"),
        ([_table(10), _table(10).assign(delay="late")], ValueError, "t.parquet: .*delay has incompatible types"),
        # After a row group was written, a later batch is cast to the file's types or refused.
        ([_table(ROW_GROUP_ROWS), _table(10).assign(delay="late")], ValueError, "t.parquet: column 'delay' is"),
        ([], ValueError, "no batch of rows to write"),
        ([_table(ROW_GROUP_ROWS + 10)], RuntimeError, "the source broke"),  # after a row group was written
    ],
)
def test_a_bad_batch_is_named_and_the_existing_file_is_left_whole(
    tmp_path: Path, batches: list[pd.DataFrame], error: type[Exception], message: str
) -> None:
    target = tmp_path / "t.parquet"
    write_parquet(target, _table(5))
    before = target.read_bytes()

    with pytest.raises(error, match=message):
        write_parquet_batches(target, _failing(batches) if error is RuntimeError else batches)

    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # no temporary file left behind


def test_parts_are_written_together_and_a_table_without_rows_keeps_its_columns(tmp_path: Path) -> None:
    frame = _table(3_000)
    targets = {"low": tmp_path / "low.parquet", "high": tmp_path / "high.parquet", "none": tmp_path / "none.parquet"}
    batches = (
        {"low": part[part["day"] < 10], "high": part[part["day"] >= 10], "none": part[part["day"] > 99]}
        for part in _in_batches(frame, [1_000, 1_000, 1_000])
    )

    written = write_parquet_parts(targets, batches)

    assert written == {"low": int((frame["day"] < 10).sum()), "high": int((frame["day"] >= 10).sum()), "none": 0}
    for name, rows in (("low", frame[frame["day"] < 10]), ("high", frame[frame["day"] >= 10])):
        write_parquet(tmp_path / "whole.parquet", rows)
        assert targets[name].read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    empty = read_parquet(targets["none"])
    assert list(empty.columns) == ["day", "carrier", "delay"] and empty.empty


def test_a_failing_part_leaves_every_target_as_it_was(tmp_path: Path) -> None:
    targets = {"a": tmp_path / "a.parquet", "b": tmp_path / "b.parquet"}
    write_parquet(targets["a"], _table(5))
    before = targets["a"].read_bytes()
    batches = [{"a": _table(10), "b": _table(10)}, {"a": _table(10), "b": _table(10)[["day"]]}]

    with pytest.raises(ValueError, match=r"b\.parquet: a batch's columns differ"):
        write_parquet_parts(targets, batches)

    assert targets["a"].read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]


def test_read_in_batches_is_read_whole(tmp_path: Path) -> None:
    frame = _table(2_500).assign(carrier=lambda f: f["carrier"].fillna("XX"))
    write_parquet(tmp_path / "t.parquet", frame)
    batches = list(read_parquet_batches(tmp_path / "t.parquet", rows=1_000))
    assert [len(b) for b in batches] == [1_000, 1_000, 500]
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), read_parquet(tmp_path / "t.parquet"))
