"""The engines' row ranges: within row groups, and a missing table named as the pandas engine names it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flightdelay.io import engines


def test_batches_stay_within_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": range(25)}).to_parquet(path, index=False, row_group_size=10)
    assert engines.batch_bounds(path, 4) == [(0, 4), (4, 8), (8, 10), (10, 14), (14, 18), (18, 20), (20, 24), (24, 25)]
    assert engines.read_rows(path, 14, 18)["a"].tolist() == [14, 15, 16, 17]


def test_a_missing_table_is_named_on_either_engine(tmp_path: Path) -> None:
    missing = tmp_path / "joined.parquet"
    with pytest.raises(FileNotFoundError, match=r"joined\.parquet: not found; run the stage that writes it"):
        engines.batch_bounds(missing, 10)
    with pytest.raises(FileNotFoundError, match=r"joined\.parquet: not found; run the stage that writes it"):
        list(engines.InProcess().table(missing, len, 10))
