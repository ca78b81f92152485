"""The time split: the latest months test, the months before them validate, the rest trains."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


class SplitError(ValueError):
    """Too few months of data for the requested split."""


@dataclass(frozen=True)
class MonthBounds:
    """Where the split falls: months from ``valid_from`` validate, from ``test_from`` test, the earlier ones train."""

    valid_from: int
    test_from: int

    @classmethod
    def of(cls, months: Iterable[int], valid_months: int, test_months: int, min_train_months: int) -> MonthBounds:
        """The latest ``test_months`` of ``months`` test, the ``valid_months`` before them validate."""
        months = sorted(set(months))
        needed = valid_months + test_months + min_train_months
        if len(months) < needed:
            raise SplitError(
                f"the data holds {len(months)} month(s) ({', '.join(map(str, months)) or 'none'}); the split "
                f"needs at least {needed} (train {min_train_months} + valid {valid_months} + test {test_months})"
            )
        return cls(valid_from=months[-test_months - valid_months], test_from=months[-test_months])

    def split(self, rows: pd.DataFrame, periods: pd.Series) -> TimeSplit:
        """``rows`` (any of them: a batch will do) in their parts, in their order; ``periods`` aligned with them."""
        return TimeSplit(
            train=rows[periods < self.valid_from].reset_index(drop=True),
            valid=rows[(periods >= self.valid_from) & (periods < self.test_from)].reset_index(drop=True),
            test=rows[periods >= self.test_from].reset_index(drop=True),
        )


def split_by_month(
    rows: pd.DataFrame, periods: pd.Series, valid_months: int, test_months: int, min_train_months: int
) -> TimeSplit:
    """Latest ``test_months`` test, the ``valid_months`` before them validate, the earlier months train.

    ``periods`` is each row's month as YYYYMM (the problem's ``period``), aligned with ``rows``.
    """
    return MonthBounds.of(periods.unique(), valid_months, test_months, min_train_months).split(rows, periods)
