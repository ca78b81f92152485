"""Featurize: keys, features and label for every row, split by month into train, valid and test."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flightdelay.core.split import split_by_month
from flightdelay.io.files import read_parquet, write_parquet
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def featurize(params: Params) -> None:
    """Write ``paths.train``, ``paths.valid`` and ``paths.test``."""
    rows = PROBLEM.featurize(read_parquet(params.paths.joined), params.label)
    split = split_by_month(
        rows, PROBLEM.period(rows), params.split.valid_months, params.split.test_months, params.split.min_train_months
    )
    for name, part, target in (
        ("train", split.train, params.paths.train),
        ("valid", split.valid, params.paths.valid),
        ("test", split.test, params.paths.test),
    ):
        write_parquet(target, part)
        months = sorted(int(m) for m in PROBLEM.period(part).unique())
        log.info("%s: %d rows, months %s, %s %.3f", name, len(part), months, PROBLEM.label, part[PROBLEM.label].mean())


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("featurize", featurize, argv)


if __name__ == "__main__":
    raise SystemExit(main())
