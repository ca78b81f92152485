"""Validate: check the joined table against the schema, write the report, fail on hard errors."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow.parquet as pq

from flightdelay.core.schema import describe, summarize_failures
from flightdelay.io.engines import engine
from flightdelay.io.files import ROW_GROUP_ROWS, read_parquet, write_json
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

    Every check of a row runs on each batch (:func:`batch_failures`, on any engine); the schema's table-wide
    uniqueness (``unique``) runs once, on those columns of the whole table (``columns(names)`` reads those it
    has: a missing one fails on its own). The report is the whole table's, whatever the batches.
    """
    counted = (batch.reset_index(drop=True) for batch in batches)  # rows numbered from 0, as a batch read is
    checked = map(partial(batch_failures, by_row(schema), warnings), counted)
    return report_of(checked, schema, warnings, columns)


def by_row(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """``schema`` without its table-wide uniqueness: the checks a batch of rows can answer alone."""
    rows = copy.deepcopy(schema)
    rows.unique = None
    return rows


def batch_failures(
    schema: pa.DataFrameSchema, warnings: pa.DataFrameSchema, batch: pd.DataFrame
) -> tuple[int, pd.DataFrame | None, pd.DataFrame | None]:
    """A batch's rows, and pandera's failure cases of ``schema`` (``by_row``) and ``warnings`` on them."""
    return len(batch), _failures(schema, batch), _failures(warnings, batch)


def report_of(
    checked: Iterable[tuple[int, pd.DataFrame | None, pd.DataFrame | None]],
    schema: pa.DataFrameSchema,
    warnings: pa.DataFrameSchema,
    columns: Callable[[Sequence[str]], pd.DataFrame],
) -> dict[str, Any]:
    """The report of :func:`batch_failures` of a table's batches, in order, and of its uniqueness."""
    errors, soft = [], []
    rows = 0
    for count, hard, soft_cases in checked:
        errors.append(_numbered(hard, rows))  # each batch's rows counted from 0: the table's row numbers
        soft.append(_numbered(soft_cases, rows))
        rows += count
    keys = columns(schema.unique) if schema.unique else pd.DataFrame()
    if len(keys.columns):
        unique = pa.DataFrameSchema(unique=list(keys.columns), report_duplicates=schema.report_duplicates)
        errors.append(_failures(unique, keys.set_axis(pd.RangeIndex(len(keys)))))
    report: dict[str, Any] = {"rows": rows, "errors": _summary(errors), "warnings": []}
    report["warnings"] = [row | {"description": warnings.columns[row["column"]].description} for row in _summary(soft)]
    report["status"] = "failed" if report["errors"] else "passed"
    return report


def _numbered(cases: pd.DataFrame | None, first: int) -> pd.DataFrame | None:
    if cases is None or not first:
        return cases
    return cases.assign(index=pd.to_numeric(cases["index"], errors="coerce") + first)


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
    schema, warnings = PROBLEM.schema(params.paths.raw), PROBLEM.warnings()
    with engine(params.engine) as runner:  # the rows' checks in this process or on a Dask cluster (io.engines)
        checked = runner.table(joined, partial(batch_failures, by_row(schema), warnings), ROW_GROUP_ROWS)
        report = report_of(checked, schema, warnings, lambda names: _columns(joined, names))
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
