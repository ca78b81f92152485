"""Featurize: keys, features and label for every row, split by month into train, valid and test.

The joined table is read a batch of rows at a time, twice: once for the months it holds (where the split
falls), then to featurize each batch and write its rows to their part. The problem's features and label
are computed row by row (the service computes them for a single request), so the parts are the same
files however the rows were batched; memory is that of a batch, not of the table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import pandas as pd

from flightdelay.core.split import MonthBounds
from flightdelay.io.files import ROW_GROUP_ROWS, read_parquet_batches, write_parquet_parts
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def featurize(params: Params, batch_rows: int = ROW_GROUP_ROWS) -> None:
    """Write ``paths.train``, ``paths.valid`` and ``paths.test``, reading ``batch_rows`` joined rows at a time."""
    joined = params.paths.joined
    months = {int(m) for batch in read_parquet_batches(joined, batch_rows) for m in PROBLEM.period(batch).unique()}
    split = params.split
    bounds = MonthBounds.of(months, split.valid_months, split.test_months, split.min_train_months)
    targets = {"train": params.paths.train, "valid": params.paths.valid, "test": params.paths.test}
    labels = dict.fromkeys(targets, 0)

    def parts() -> Iterator[dict[str, pd.DataFrame]]:
        for batch in read_parquet_batches(joined, batch_rows):
            rows = PROBLEM.featurize(batch, params.label)
            split_rows = bounds.split(rows, PROBLEM.period(rows))
            part = {"train": split_rows.train, "valid": split_rows.valid, "test": split_rows.test}
            for name, frame in part.items():
                labels[name] += int(frame[PROBLEM.label].sum())
            yield part

    written = write_parquet_parts(targets, parts())
    for name, rows in written.items():
        ending = sorted(month for month in months if _part_of(month, bounds) == name)
        log.info("%s: %d rows, months %s, %s %.3f", name, rows, ending, PROBLEM.label, labels[name] / max(rows, 1))


def _part_of(month: int, bounds: MonthBounds) -> str:
    return "train" if month < bounds.valid_from else "valid" if month < bounds.test_from else "test"


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("featurize", featurize, argv)


if __name__ == "__main__":
    raise SystemExit(main())
