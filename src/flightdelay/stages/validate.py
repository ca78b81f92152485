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
from flightdelay.stages._runner import StageFailed, run_stage

log = logging.getLogger(__name__)


def _counts(failures: pd.DataFrame, descriptions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Failures per column and check, sorted, from pandera's ``failure_cases`` frame."""
    rows = []
    frame = failures.assign(column=failures["column"].fillna("<table>").astype(str), check=failures["check"].astype(str))
    for (column, check), group in frame.groupby(["column", "check"], sort=True):
        row: dict[str, Any] = {"column": column, "check": check, "failures": len(group)}
        examples = sorted({str(v) for v in group["failure_case"].dropna()})[:3]
        if examples:
            row["examples"] = examples
        if descriptions and column in descriptions:
            row["description"] = descriptions[column]
        rows.append(row)
    return rows


def check(flights: pd.DataFrame, carriers: pd.Series, airports: pd.Series) -> dict[str, Any]:
    """The validation report for ``flights``: every hard error and soft warning, counted."""
    report: dict[str, Any] = {"rows": len(flights), "errors": [], "warnings": []}
    try:
        schemas.flights_schema(carriers, airports).validate(flights, lazy=True)
    except pa.errors.SchemaErrors as exc:
        report["errors"] = _counts(exc.failure_cases)
    try:
        schemas.WARNINGS.validate(flights, lazy=True)
    except pa.errors.SchemaErrors as exc:
        descriptions = {name: col.description or "" for name, col in schemas.WARNINGS.columns.items()}
        report["warnings"] = _counts(exc.failure_cases, descriptions)
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
        problems = "\n".join(
            f"  column {e['column']!r}, check {e['check']}: {e['failures']} failing"
            + (f" (e.g. {', '.join(e['examples'])})" if "examples" in e else "")
            for e in report["errors"]
        )
        raise StageFailed(f"{params.paths.flights} failed validation (see {params.paths.validation_report}):\n{problems}")
    log.info("%d rows passed; %d warning check(s)", report["rows"], len(report["warnings"]))


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("validate", validate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
