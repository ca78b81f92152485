"""Validate: check the joined table against the schema, write the report, fail on hard errors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa

from flightdelay import schemas
from flightdelay.io.files import read_csv, read_parquet, write_json
from flightdelay.settings import Params
from flightdelay.stages._runner import StageFailedError, run_stage

log = logging.getLogger(__name__)


def check(flights: pd.DataFrame, carriers: pd.Series, airports: pd.Series) -> dict[str, Any]:
    """The validation report for ``flights``: every hard error and soft warning, counted."""
    report: dict[str, Any] = {"rows": len(flights), "errors": [], "warnings": []}
    try:
        schemas.flights_schema(carriers, airports).validate(flights, lazy=True)
    except pa.errors.SchemaErrors as exc:
        report["errors"] = schemas.failure_summary(exc)
    try:
        schemas.WARNINGS.validate(flights, lazy=True)
    except pa.errors.SchemaErrors as exc:
        report["warnings"] = [
            row | {"description": schemas.WARNINGS.columns[row["column"]].description}
            for row in schemas.failure_summary(exc)
        ]
    report["status"] = "failed" if report["errors"] else "passed"
    return report


def validate(params: Params) -> None:
    """Write ``paths.validation_report``; raise when the data has hard errors."""
    flights = read_parquet(params.paths.flights)
    carriers = read_csv(params.paths.raw / "airlines.csv", schemas.RawAirlines)["carrier"]
    airports = read_csv(params.paths.raw / "airports.csv", schemas.RawAirports)["faa"]
    report = check(flights, carriers, airports)
    write_json(params.paths.validation_report, report)
    for warning in report["warnings"]:
        log.warning("%(column)s: %(check)s failed for %(failures)d rows", warning)
    if report["errors"]:
        problems = schemas.describe(report["errors"])
        raise StageFailedError(
            f"{params.paths.flights} failed validation (see {params.paths.validation_report}):\n{problems}"
        )
    log.info("%d rows passed; %d warning check(s)", report["rows"], len(report["warnings"]))


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("validate", validate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
