"""Reading the raw sources and writing outputs atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow

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
