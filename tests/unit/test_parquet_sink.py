"""A table written a batch at a time is the file its whole frame makes, byte for byte; bad batches leave nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from flightdelay.io.files import ROW_GROUP_ROWS, read_parquet, write_parquet, write_parquet_batches


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
        ([_table(10), _table(10).assign(delay="late")], ValueError, "column 'delay' is"),
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
