"""Ingest: read the raw files and join them into one typed Parquet file, a row per example, a batch at a time."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from flightdelay.io.files import write_parquet_batches
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def ingest(params: Params) -> None:
    """Write the problem's joined table of ``paths.raw`` to ``paths.joined``, a batch of rows at a time."""
    batches = PROBLEM.ingest_batches(params.paths.raw, params.ingest)
    rows = write_parquet_batches(params.paths.joined, (_logged(batch) for batch in batches))
    log.info("wrote %d rows to %s", rows, params.paths.joined)


def _logged(batch: pd.DataFrame) -> pd.DataFrame:
    log.info("joined %d rows x %d columns", len(batch), batch.shape[1])
    return batch


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("ingest", ingest, argv)


if __name__ == "__main__":
    raise SystemExit(main())
