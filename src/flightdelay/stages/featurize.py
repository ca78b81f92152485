"""Featurize: keys, features and label for every row, split by month into train, valid and test.

The joined table is read a batch of rows at a time, twice: once for the months it holds (where the split
falls), then to featurize each batch and write its rows to their part. ``params.engine`` says where the
batches are read and featurized: in this process, or on a Dask cluster (``io.engines``). The problem's
features and label are computed row by row (the service computes them for a single request), so the parts
are the same files however the rows were batched; memory is that of a batch, not of the table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import pandas as pd

from flightdelay.core.split import MonthBounds
from flightdelay.io.engines import engine
from flightdelay.io.files import ROW_GROUP_ROWS, write_parquet_parts
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def featurize(params: Params, batch_rows: int = ROW_GROUP_ROWS) -> None:
    """Write ``paths.train``, ``paths.valid`` and ``paths.test``, ``batch_rows`` joined rows at a time, on the
    engine of ``params.engine`` (``io.engines``)."""
    joined = params.paths.joined
    split = params.split
    targets = {"train": params.paths.train, "valid": params.paths.valid, "test": params.paths.test}
    labels = dict.fromkeys(targets, 0)

    def counted(parts: Iterator[dict[str, pd.DataFrame]]) -> Iterator[dict[str, pd.DataFrame]]:
        for part in parts:
            for name, frame in part.items():
                labels[name] += int(frame[PROBLEM.label].sum())
            yield part

    with engine(params.engine) as runner:
        months: set[int] = set().union(*runner.table(joined, _months, batch_rows))
        bounds = MonthBounds.of(months, split.valid_months, split.test_months, split.min_train_months)
        written = write_parquet_parts(
            targets, counted(runner.table(joined, partial(_parts, bounds, params.label), batch_rows))
        )
    for name, rows in written.items():
        ending = sorted(month for month in months if _part_of(month, bounds) == name)
        log.info("%s: %d rows, months %s, %s %.3f", name, rows, ending, PROBLEM.label, labels[name] / max(rows, 1))


def _months(batch: pd.DataFrame) -> set[int]:
    return {int(month) for month in PROBLEM.period(batch).unique()}


def _parts(bounds: MonthBounds, label: Any, batch: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A batch of joined rows featurized, in its parts (some may be empty)."""
    rows = PROBLEM.featurize(batch, label)
    split = bounds.split(rows, PROBLEM.period(rows))
    return {"train": split.train, "valid": split.valid, "test": split.test}


def _part_of(month: int, bounds: MonthBounds) -> str:
    return "train" if month < bounds.valid_from else "valid" if month < bounds.test_from else "test"


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("featurize", featurize, argv)


if __name__ == "__main__":
    raise SystemExit(main())
