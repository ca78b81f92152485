"""Reading the raw sources and writing outputs atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet as pq

from flightdelay.core.schema import describe, failure_summary


class RawDataError(ValueError):
    """A raw file is missing, empty, truncated or does not match its schema."""


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(target: Path, payload: Any, *, indent: int | None = 2) -> None:
    """Write ``payload`` as JSON (sorted keys, trailing newline), atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=indent, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def write_parquet(target: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as Parquet without its index, atomically."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


#: Rows per Parquet row group: pyarrow's default, which :func:`write_parquet` of a whole frame uses too.
ROW_GROUP_ROWS = 1024 * 1024


class ParquetSink:
    """One table written to Parquet a batch of rows at a time, the same file as :func:`write_parquet` of it whole.

    Rows wait in memory until a row group is full (:data:`ROW_GROUP_ROWS`, the size a whole frame's write
    cuts at): however the rows were batched, the file is the same, byte for byte (``tests/unit``), so a
    stage that streams writes what it wrote when it did not. What is held is at most a row group and a
    batch. Every batch must have the first's columns, in its order; a type that differs is cast to the
    first batch's (a column all missing in one batch), or refused, naming it. Use
    :func:`write_parquet_batches`, which also makes the file appear whole or not at all.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._waiting: list[pyarrow.Table] = []
        self._waiting_rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        table = pyarrow.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        else:
            table = self._conform(table, self._writer.schema)
        self._waiting.append(table)
        self._waiting_rows += len(table)
        self.rows += len(table)
        while self._waiting_rows >= ROW_GROUP_ROWS:
            self._write_group(ROW_GROUP_ROWS)

    def close(self) -> None:
        """Write the last, partial row group and the footer."""
        if self._writer is None:
            raise ValueError(f"{self.path}: no batch of rows to write")
        if self._waiting_rows or not self.rows:  # an empty table is one empty row group, as a whole write makes it
            self._write_group(self._waiting_rows)
        self._writer.close()

    def abandon(self) -> None:
        """Close the file without the rows still waiting: what was written is incomplete, and to be removed."""
        if self._writer is not None:
            self._writer.close()
        self._waiting, self._waiting_rows = [], 0

    def _write_group(self, rows: int) -> None:
        assert self._writer is not None
        waiting = pyarrow.concat_tables(self._waiting)
        self._writer.write_table(waiting.slice(0, rows), row_group_size=max(rows, 1))
        rest = waiting.slice(rows)
        self._waiting, self._waiting_rows = ([rest] if len(rest) else []), len(rest)

    def _conform(self, table: pyarrow.Table, schema: pyarrow.Schema) -> pyarrow.Table:
        if table.schema.names != schema.names:
            raise ValueError(
                f"{self.path}: a batch's columns differ from the first batch's: {table.schema.names} "
                f"against {schema.names}"
            )
        for field in schema:
            given = table.schema.field(field.name).type
            if given != field.type and not (pyarrow.types.is_null(given) or _is_widening(given, field.type)):
                raise ValueError(
                    f"{self.path}: column {field.name!r} is {given} in a batch and {field.type} in the first"
                )
        return table.cast(schema)


def _is_widening(given: pyarrow.DataType, target: pyarrow.DataType) -> bool:
    """An integer column in a batch where the first had floats (a batch without a missing value)."""
    return bool(pyarrow.types.is_integer(given) and pyarrow.types.is_floating(target))


def write_parquet_batches(target: Path, batches: Iterable[pd.DataFrame]) -> int:
    """Write ``batches`` (rows of one table, in order) to ``target`` through a :class:`ParquetSink`, atomically;
    return the number of rows. If a batch fails, ``target`` is left as it was."""
    with atomic_path(target) as tmp:
        sink = ParquetSink(tmp)
        try:
            for batch in batches:
                sink.write(batch)
        except BaseException:
            sink.abandon()
            raise
        sink.close()
    return sink.rows


def read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro)")
    return pd.read_parquet(path, engine="pyarrow")


def read_csv(path: Path, model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """Read one raw CSV and type it with ``model``; any problem raises :class:`RawDataError` naming the file."""
    if not path.is_file():
        raise RawDataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise RawDataError(f"{path}: file is empty")
    try:
        # The pyarrow parser rejects a row with too few fields, which is how a truncated file looks.
        frame = pd.read_csv(path, engine="pyarrow", na_values=["NA", ""], keep_default_na=False)
    except (pyarrow.ArrowInvalid, ValueError) as exc:
        raise RawDataError(f"{path}: cannot be parsed as CSV (truncated or malformed?): {exc}") from exc
    if frame.empty:
        raise RawDataError(f"{path}: has a header but no rows")
    try:
        return model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise RawDataError(f"{path} does not match {model.__name__}:\n{describe(failure_summary(exc))}") from exc


def read_csvs(paths: list[Path], model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """Read and concatenate several raw files of the same kind, in the order given."""
    if not paths:
        raise RawDataError(f"no {model.__name__} files found")
    return pd.concat([read_csv(p, model) for p in paths], ignore_index=True)
