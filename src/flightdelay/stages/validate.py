"""Validate: check the joined table against the schema, write the report, fail on hard errors."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow.parquet as pq

from flightdelay.core.schema import describe, summarize_failures
from flightdelay.io.files import read_parquet, read_parquet_batches, write_json
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import StageFailedError, run_stage

log = logging.getLogger(__name__)


def check(joined: pd.DataFrame, schema: pa.DataFrameSchema, warnings: pa.DataFrameSchema) -> dict[str, Any]:
    """The validation report for ``joined``: every failure of the hard ``schema`` and the soft ``warnings``, counted."""
    return check_batches([joined], schema, warnings, lambda names: joined[[n for n in names if n in joined.columns]])


def check_batches(
    batches: Iterable[pd.DataFrame],
    schema: pa.DataFrameSchema,
    warnings: pa.DataFrameSchema,
    columns: Callable[[Sequence[str]], pd.DataFrame],
) -> dict[str, Any]:
    """:func:`check` of the table that ``batches`` (its rows, in order) make up, a batch at a time.

    Every check of a row runs on each batch; the schema's table-wide uniqueness (``unique``) runs once, on
    those columns of the whole table (``columns(names)`` reads those it has: a missing one fails on its
    own). The report is the whole table's, whatever the batches.
    """
    by_row = copy.deepcopy(schema)
    by_row.unique = None
    errors, soft = [], []
    rows = 0
    for batch in batches:
        numbered = batch.set_axis(pd.RangeIndex(rows, rows + len(batch)))  # the table's row numbers
        errors.append(_failures(by_row, numbered))
        soft.append(_failures(warnings, numbered))
        rows += len(batch)
    keys = columns(schema.unique) if schema.unique else pd.DataFrame()
    if len(keys.columns):
        unique = pa.DataFrameSchema(unique=list(keys.columns), report_duplicates=schema.report_duplicates)
        errors.append(_failures(unique, keys.set_axis(pd.RangeIndex(len(keys)))))
    report: dict[str, Any] = {"rows": rows, "errors": _summary(errors), "warnings": []}
    report["warnings"] = [row | {"description": warnings.columns[row["column"]].description} for row in _summary(soft)]
    report["status"] = "failed" if report["errors"] else "passed"
    return report


def _failures(schema: pa.DataFrameSchema, rows: pd.DataFrame) -> pd.DataFrame | None:
    try:
        schema.validate(rows, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases: pd.DataFrame = exc.failure_cases
        return cases
    return None


def _summary(failures: list[pd.DataFrame | None]) -> list[dict[str, Any]]:
    found = [cases for cases in failures if cases is not None]
    if not found:
        return []
    cases = pd.concat(found, ignore_index=True)
    # A failure of a column as a whole (its type, its presence) has no row: every batch reports it once.
    whole_column = cases["index"].isna()
    repeated = whole_column & cases.astype(str).duplicated(keep="first")
    return summarize_failures(cases[~repeated])


def validate(params: Params) -> None:
    """Write ``paths.validation_report``; raise when the data has hard errors."""
    joined = params.paths.joined
    batches = read_parquet_batches(joined)
    report = check_batches(batches, PROBLEM.schema(params.paths.raw), PROBLEM.warnings(), lambda c: _columns(joined, c))
    write_json(params.paths.validation_report, report)
    for warning in report["warnings"]:
        log.warning("%(column)s: %(check)s failed for %(failures)d rows", warning)
    if report["errors"]:
        problems = describe(report["errors"])
        raise StageFailedError(
            f"{params.paths.joined} failed validation (see {params.paths.validation_report}):\n{problems}"
        )
    log.info("%d rows passed; %d warning check(s)", report["rows"], len(report["warnings"]))


def _columns(path: Path, names: Sequence[str]) -> pd.DataFrame:
    """Those of ``names`` that the table at ``path`` has (a missing one fails validation by itself)."""
    present = set(pq.read_schema(path).names)
    return read_parquet(path, columns=[name for name in names if name in present])


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("validate", validate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
