"""Reading the raw sources and writing outputs atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
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
    batch. Every batch must have the same columns, in the same order. The file's types are those of the
    first row group's batches together (a column all missing in one batch takes the others' type); a later
    batch is cast to them where no value changes (integers into floats, a column all missing), or refused,
    naming the column. Use :func:`write_parquet_batches` or :func:`write_parquet_parts`, which also make
    the files appear whole or not at all.
    """

    def __init__(self, path: Path, name: Path | None = None) -> None:
        self.path = path
        self.name = name or path  # what messages call the file (the target, when path is a temporary file)
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._waiting: list[pyarrow.Table] = []
        self._waiting_rows = 0
        self._empty: pyarrow.Table | None = None  # the first batch without rows: the schema of an empty table

    def write(self, frame: pd.DataFrame) -> None:
        table = pyarrow.Table.from_pandas(frame, preserve_index=False)
        if not len(table):
            self._empty = table if self._empty is None else self._empty
            return
        if self._writer is not None:
            table = self._conform(table, self._writer.schema)
        elif self._waiting and table.schema.names != self._waiting[0].schema.names:
            raise self._columns_differ(table.schema, self._waiting[0].schema)
        self._waiting.append(table)
        self._waiting_rows += len(table)
        self.rows += len(table)
        while self._waiting_rows >= ROW_GROUP_ROWS:
            self._write_group(ROW_GROUP_ROWS)

    def close(self) -> None:
        """Write the last, partial row group and the footer."""
        if not self.rows:  # an empty table is one empty row group, as a whole write makes it
            if self._empty is None:
                raise ValueError(f"{self.name}: no batch of rows to write")
            self._waiting = [self._empty]
        if self._waiting:
            self._write_group(self._waiting_rows)
        assert self._writer is not None
        self._writer.close()

    def abandon(self) -> None:
        """Close the file without the rows still waiting: what was written is incomplete, and to be removed."""
        if self._writer is not None:
            self._writer.close()
        self._waiting, self._waiting_rows = [], 0

    def _write_group(self, rows: int) -> None:
        if self._writer is None:
            schema = self._first_schema(self._waiting)
            self._writer = pq.ParquetWriter(self.path, schema, compression="zstd")
            self._waiting = [self._conform(table, schema) for table in self._waiting]
        waiting = pyarrow.concat_tables(self._waiting)
        self._writer.write_table(waiting.slice(0, rows), row_group_size=max(rows, 1))
        rest = waiting.slice(rows)
        self._waiting, self._waiting_rows = ([rest] if len(rest) else []), len(rest)

    def _first_schema(self, tables: list[pyarrow.Table]) -> pyarrow.Schema:
        """The types of the first row group's batches together, with the first batch's pandas metadata."""
        try:
            unified = pyarrow.unify_schemas([table.schema for table in tables], promote_options="permissive")
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError) as exc:
            raise ValueError(f"{self.name}: the batches' column types differ: {exc}") from exc
        return unified.with_metadata(tables[0].schema.metadata)

    def _columns_differ(self, given: pyarrow.Schema, first: pyarrow.Schema) -> ValueError:
        return ValueError(
            f"{self.name}: a batch's columns differ from the first batch's: {given.names} against {first.names}"
        )

    def _conform(self, table: pyarrow.Table, schema: pyarrow.Schema) -> pyarrow.Table:
        if table.schema.names != schema.names:
            raise self._columns_differ(table.schema, schema)
        for field in schema:
            given = table.schema.field(field.name).type
            if given != field.type and not (pyarrow.types.is_null(given) or _is_widening(given, field.type)):
                raise ValueError(
                    f"{self.name}: column {field.name!r} is {given} in a batch and {field.type} in the file"
                )
        return table.cast(schema)


def _is_widening(given: pyarrow.DataType, target: pyarrow.DataType) -> bool:
    """An integer column in a batch where the file has floats (a batch without a missing value)."""
    return bool(pyarrow.types.is_integer(given) and pyarrow.types.is_floating(target))


def write_parquet_parts(targets: Mapping[str, Path], batches: Iterable[Mapping[str, pd.DataFrame]]) -> dict[str, int]:
    """Write several tables at once, a batch at a time: each of ``batches`` maps some of ``targets``' names to
    the next rows of that table. Every target appears, whole, only if all of them are written (a failure leaves
    them as they were); return each one's number of rows."""
    with ExitStack() as stack:
        sinks = {name: ParquetSink(stack.enter_context(atomic_path(path)), path) for name, path in targets.items()}
        try:
            for batch in batches:
                for name, frame in batch.items():
                    sinks[name].write(frame)
            for sink in sinks.values():
                sink.close()
        except BaseException:
            for sink in sinks.values():
                sink.abandon()
            raise
        return {name: sink.rows for name, sink in sinks.items()}


def write_parquet_batches(target: Path, batches: Iterable[pd.DataFrame]) -> int:
    """Write ``batches`` (rows of one table, in order) to ``target`` through a :class:`ParquetSink`, atomically;
    return the number of rows. If a batch fails, ``target`` is left as it was."""
    return write_parquet_parts({"table": target}, ({"table": batch} for batch in batches))["table"]


def read_parquet_batches(
    path: Path, rows: int = ROW_GROUP_ROWS, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The table at ``path`` (only ``columns``, when given) as frames of at most ``rows`` rows, in order, typed as
    :func:`read_parquet` types it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro)")
    file = pq.ParquetFile(path)
    schema = file.schema_arrow if columns is None else pyarrow.schema([file.schema_arrow.field(c) for c in columns])
    schema = schema.with_metadata(file.schema_arrow.metadata)
    for batch in file.iter_batches(batch_size=rows, columns=None if columns is None else list(columns)):
        yield pyarrow.Table.from_batches([batch], schema=schema).to_pandas()


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The table at ``path`` (only ``columns``, when given)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro)")
    return pd.read_parquet(path, engine="pyarrow", columns=None if columns is None else list(columns))


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
