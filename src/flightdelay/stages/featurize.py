"""Featurize: features and label for every flight, split by time into train, valid and test."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flightdelay.core.features import featurize as build
from flightdelay.core.features import split_by_month
from flightdelay.io.files import read_parquet, write_parquet
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def featurize(params: Params) -> None:
    """Write ``paths.train``, ``paths.valid`` and ``paths.test``."""
    rows = build(read_parquet(params.paths.flights), params.label.delay_minutes)
    split = split_by_month(rows, params.split.valid_months, params.split.test_months, params.split.min_train_months)
    for name, part, target in (
        ("train", split.train, params.paths.train),
        ("valid", split.valid, params.paths.valid),
        ("test", split.test, params.paths.test),
    ):
        write_parquet(target, part)
        months = sorted(int(m) for m in (part["year"] * 100 + part["month"]).unique())
        log.info("%s: %d rows, months %s, delayed %.3f", name, len(part), months, part["delayed"].mean())


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("featurize", featurize, argv)


if __name__ == "__main__":
    raise SystemExit(main())
