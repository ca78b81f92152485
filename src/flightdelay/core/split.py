"""The time split: the latest months test, the months before them validate, the rest trains."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


class SplitError(ValueError):
    """Too few months of data for the requested split."""


def split_by_month(
    rows: pd.DataFrame, periods: pd.Series, valid_months: int, test_months: int, min_train_months: int
) -> TimeSplit:
    """Latest ``test_months`` test, the ``valid_months`` before them validate, the earlier months train.

    ``periods`` is each row's month as YYYYMM (the problem's ``period``), aligned with ``rows``.
    """
    months = sorted(periods.unique())
    needed = valid_months + test_months + min_train_months
    if len(months) < needed:
        raise SplitError(
            f"the data holds {len(months)} month(s) ({', '.join(map(str, months)) or 'none'}); "
            f"the split needs at least {needed} (train {min_train_months} + valid {valid_months} + test {test_months})"
        )
    test_from = months[-test_months]
    valid_from = months[-test_months - valid_months]
    return TimeSplit(
        train=rows[periods < valid_from].reset_index(drop=True),
        valid=rows[(periods >= valid_from) & (periods < test_from)].reset_index(drop=True),
        test=rows[periods >= test_from].reset_index(drop=True),
    )
