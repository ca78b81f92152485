"""Validate: check the joined table against the schema, write the report, fail on hard errors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa

from flightdelay.core.schema import describe, failure_summary
from flightdelay.io.files import read_parquet, write_json
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import StageFailedError, run_stage

log = logging.getLogger(__name__)


def check(joined: pd.DataFrame, schema: pa.DataFrameSchema, warnings: pa.DataFrameSchema) -> dict[str, Any]:
    """The validation report for ``joined``: every failure of the hard ``schema`` and the soft ``warnings``, counted."""
    report: dict[str, Any] = {"rows": len(joined), "errors": [], "warnings": []}
    try:
        schema.validate(joined, lazy=True)
    except pa.errors.SchemaErrors as exc:
        report["errors"] = failure_summary(exc)
    try:
        warnings.validate(joined, lazy=True)
    except pa.errors.SchemaErrors as exc:
        report["warnings"] = [
            row | {"description": warnings.columns[row["column"]].description} for row in failure_summary(exc)
        ]
    report["status"] = "failed" if report["errors"] else "passed"
    return report


def validate(params: Params) -> None:
    """Write ``paths.validation_report``; raise when the data has hard errors."""
    joined = read_parquet(params.paths.joined)
    report = check(joined, PROBLEM.schema(params.paths.raw), PROBLEM.warnings())
    write_json(params.paths.validation_report, report)
    for warning in report["warnings"]:
        log.warning("%(column)s: %(check)s failed for %(failures)d rows", warning)
    if report["errors"]:
        problems = describe(report["errors"])
        raise StageFailedError(
            f"{params.paths.joined} failed validation (see {params.paths.validation_report}):\n{problems}"
        )
    log.info("%d rows passed; %d warning check(s)", report["rows"], len(report["warnings"]))


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("validate", validate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
