"""Ingest: read the raw files and join them into one typed Parquet file, a row per example."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flightdelay.io.files import write_parquet
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def ingest(params: Params) -> None:
    """Write the problem's joined table of ``paths.raw`` to ``paths.joined``."""
    joined = PROBLEM.ingest(params.paths.raw, params.ingest)
    write_parquet(params.paths.joined, joined)
    log.info("wrote %d rows x %d columns to %s", len(joined), joined.shape[1], params.paths.joined)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("ingest", ingest, argv)


if __name__ == "__main__":
    raise SystemExit(main())
