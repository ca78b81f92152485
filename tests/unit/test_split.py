from __future__ import annotations

import pandas as pd
import pytest

from flightdelay.core import split as splitting


def _rows(months: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"year": 2013, "month": months, "delayed": 0})


def _split(rows: pd.DataFrame, **sizes: int) -> splitting.TimeSplit:
    return splitting.split_by_month(rows, rows["year"] * 100 + rows["month"], **sizes)


def test_split_is_by_time() -> None:
    split = _split(_rows([3, 1, 2, 4, 4]), valid_months=1, test_months=1, min_train_months=1)
    assert sorted(split.train["month"].unique()) == [1, 2]
    assert split.valid["month"].unique().tolist() == [3]
    assert split.test["month"].unique().tolist() == [4, 4][:1]
    assert len(split.test) == 2


def test_split_needs_enough_months() -> None:
    with pytest.raises(splitting.SplitError, match="holds 2 month"):
        _split(_rows([1, 2]), valid_months=1, test_months=1, min_train_months=1)
