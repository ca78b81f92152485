"""Pandera helpers the machinery shares: failures counted for a report, and a request model built from a schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd
import pandera.pandas as pa

_PRESENCE_CHECKS = {"column_in_dataframe": "missing column", "column_in_schema": "unexpected column"}


def failure_summary(errors: pa.errors.SchemaErrors) -> list[dict[str, Any]]:
    """Pandera's failure cases counted per column and check, with up to three example values.

    A missing or unexpected column is reported under its own name; a table-wide check under
    ``<table>``, counted once per failing row.
    """
    return summarize_failures(errors.failure_cases)


def summarize_failures(failure_cases: pd.DataFrame) -> list[dict[str, Any]]:
    """:func:`failure_summary` of pandera's failure cases (``SchemaErrors.failure_cases``), which may be those of
    several batches of one table together: each batch's row indices the table's, a failure of a column as a whole
    (its type, its presence) given once."""
    cases = failure_cases.copy()
    presence = cases["check"].isin(list(_PRESENCE_CHECKS))
    cases.loc[presence, "column"] = cases.loc[presence, "failure_case"]
    cases.loc[presence, "check"] = cases.loc[presence, "check"].map(_PRESENCE_CHECKS)
    table_wide = (cases["schema_context"] == "DataFrameSchema") & ~presence
    cases.loc[table_wide, "column"] = "<table>"
    cases.loc[table_wide, "failure_case"] = None
    cases["column"] = cases["column"].fillna("<table>").astype(str)
    summary = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        indices = group["index"].dropna()
        row: dict[str, Any] = {
            "column": column,
            "check": str(check),
            "failures": int(indices.nunique()) if len(indices) else len(group),
        }
        if not presence.loc[group.index].any():
            examples = sorted({str(v) for v in group["failure_case"].dropna()})[:3]
            if examples:
                row["examples"] = examples
        summary.append(row)
    return summary


def describe(summary: list[dict[str, Any]]) -> str:
    """One line per failing column and check, for an error message."""
    return "\n".join(
        f"  column {row['column']!r}, check {row['check']}: {row['failures']} failing"
        + (f" (e.g. {', '.join(row['examples'])})" if "examples" in row else "")
        for row in summary
    )


_BOUNDS = {
    "greater_than": ("gt", "min_value"),
    "greater_than_or_equal_to": ("ge", "min_value"),
    "less_than": ("lt", "max_value"),
    "less_than_or_equal_to": ("le", "max_value"),
}


def _field_constraints(column: pa.Column) -> dict[str, Any]:
    constraints: dict[str, Any] = {}
    for check in column.checks:
        stats = check.statistics or {}
        if check.name in _BOUNDS:
            keyword, stat = _BOUNDS[check.name]
            constraints[keyword] = stats[stat]
        elif check.name == "in_range":
            constraints["ge" if stats.get("include_min", True) else "gt"] = stats["min_value"]
            constraints["le" if stats.get("include_max", True) else "lt"] = stats["max_value"]
        elif check.name == "str_matches":
            constraints["pattern"] = stats["pattern"]
        elif check.name == "str_length":
            if stats.get("min_value") is not None:
                constraints["min_length"] = stats["min_value"]
            if stats.get("max_value") is not None:
                constraints["max_length"] = stats["max_value"]
    return constraints


def request_model(
    name: str,
    schema: pa.DataFrameSchema,
    columns: Iterable[str],
    required: Iterable[str],
    descriptions: Mapping[str, str],
    *,
    examples: Mapping[str, Any] | None = None,
    validators: Mapping[str, Callable[..., Any]] | None = None,
    doc: str | None = None,
) -> type[Any]:
    """A pydantic model of one request with ``columns`` of ``schema``; the ``required`` ones cannot be left out.

    Types, ranges and patterns come from the schema, so changing the schema changes the service's contract
    with it; each field's description from ``descriptions`` (every column needs one). Unknown fields are
    rejected; NaN and infinity are not numbers; strings are stripped. ``validators`` are pydantic
    ``field_validator``s for what one column's checks cannot say.
    """
    from pydantic import ConfigDict, Field, create_model

    wanted = set(required)
    fields: dict[str, Any] = {}
    for column_name in columns:
        column = schema.columns[column_name]
        kind = str(column.dtype)
        python_type: type = int if kind.startswith("int") else float if kind.startswith("float") else str
        is_required = column_name in wanted
        annotation = python_type if is_required else python_type | None
        fields[column_name] = (
            annotation,
            Field(
                ... if is_required else None,
                description=descriptions[column_name],
                **_field_constraints(column),
            ),
        )

    def openapi30(json_schema: dict[str, Any]) -> None:
        # BentoML publishes OpenAPI 3.0, whose exclusive bounds are flags on minimum/maximum, not numbers
        # (pydantic writes the JSON Schema 2020-12 form), and whose examples are `example`, singular.
        for prop in json_schema["properties"].values():
            for bound in (prop, *prop.get("anyOf", ())):
                for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
                    if not isinstance(bound.get(exclusive, True), bool):
                        bound[inclusive], bound[exclusive] = bound[exclusive], True
        if examples:
            json_schema["example"] = dict(examples)

    config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True, json_schema_extra=openapi30)
    model: type[Any] = create_model(name, __config__=config, __validators__=dict(validators or {}), **fields)
    model.__doc__ = doc
    return model
