"""Batch scoring: a file of flights scored by a registered model version, a chunk at a time.

``flightdelay batch-predict --input FILE --output FILE [--version N | --alias production]``. The input is CSV
or Parquet with the service's request columns (and, optionally, ``request_id``). Each chunk of rows goes the
service's way: the request model validates every row, the codes not on file are named, and the version's
:class:`~flightdelay.serving.Predictor` joins, featurizes and scores them with the code the service runs.
Memory holds one chunk, never the file.

The output has a row per input row: its ``request_id`` (the input's, or one derived from the file's bytes and
the row's position, so a second run gives the same ids), the validated request, the probability, the decision
at the version's threshold, the model version, when it was scored, and ``error``: why that row alone could not
be scored (its probability is then empty). It is written beside its destination and moved into place once
every row is scored: a run that fails leaves what was there before. ``nox -s monitor -- --window`` reads it
like the service's prediction log, so labels join to it by request id.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
import threading
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from flightdelay import registry, serving
from flightdelay.io import dvc, engines, tracking
from flightdelay.io.files import atomic_path
from flightdelay.problem import PROBLEM
from flightdelay.settings import Engine

REQUEST_ID = "request_id"
OUTCOME_COLUMNS = ("delay_probability", "delayed", "threshold", "model", "model_version", "scored_at", "error")
SUFFIXES = (".csv", ".parquet")
Say = Callable[[str], None]


class BatchError(ValueError):
    """The input, the output or the model version cannot be used; nothing was written."""


@dataclass(frozen=True)
class Scored:
    """What a run wrote."""

    output: Path
    rows: int
    failed: int  # rows with an error and no probability
    version: registry.Version


def suffix(path: Path, option: str) -> str:
    """``.csv`` or ``.parquet``, or a :class:`BatchError` naming ``option``."""
    if path.suffix.lower() not in SUFFIXES:
        raise BatchError(f"{option} {path}: expected a .csv or .parquet file, not {path.suffix or 'no suffix'!r}")
    return path.suffix.lower()


# --- Reading -----------------------------------------------------------------------------------


def fetch(source: str, into: Path) -> Path:
    """``source`` as a local file: a path as it is, a URL (``s3://``, ``gs://``, ``azure://``, ``https://``) copied
    into ``into`` with ``dvc get-url``, so any storage DVC reads (with its credentials) can hold the flights."""
    if "://" not in source:
        return Path(source)
    name = PurePosixPath(urlparse(source).path).name
    if not name:
        raise BatchError(f"--input {source}: the URL names no file")
    target = into / name
    suffix(target, "--input")
    try:
        dvc.run("get-url", source, str(target), cwd=into)
    except dvc.DvcError as exc:
        raise BatchError(f"--input {source}: could not fetch it ({str(exc).strip().splitlines()[-1]})") from exc
    return target


def count_rows(path: Path) -> int:
    """The rows of the input (for the progress bar): the Parquet footer's count, or the CSV's lines less its header."""
    if suffix(path, "--input") == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The input, ``rows`` at a time, with the request columns checked on the first; CSV cells stay text (the
    request model reads them as a request's JSON would be read)."""
    columns = list(PROBLEM.request_columns())
    try:
        if suffix(path, "--input") == ".parquet":
            source = pq.ParquetFile(path)
            _check_columns(path, source.schema_arrow.names, columns)
            for batch in source.iter_batches(batch_size=rows):
                yield batch.to_pandas()
            return
        reader = pd.read_csv(path, chunksize=rows, dtype=str, keep_default_na=False, na_values=[""])
        first = True
        for frame in reader:
            if first:
                _check_columns(path, list(frame.columns), columns)
                first = False
            yield frame
        if first:
            raise BatchError(f"--input {path}: the file holds no header and no rows")
    except (OSError, pa.ArrowInvalid, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BatchError(f"--input {path}: unreadable ({exc})") from exc


def _check_columns(path: Path, found: Sequence[str], wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in found]
    if missing:
        raise BatchError(f"--input {path}: the request columns {missing} are missing (found {list(found)})")


def id_prefix(path: Path) -> str:
    """``batch-<12 hex>`` from the file's bytes: ids that a second run over the same file gives again."""
    return f"batch-{tracking.sha256(path)[:12]}"


# --- Scoring -----------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A Python value for the request model: missing cells are None, numpy scalars Python ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")


def score_chunk(
    predictor: serving.Predictor, model: type[BaseModel], frame: pd.DataFrame
) -> tuple[list[dict[str, Any] | None], np.ndarray, list[str | None]]:
    """Each row validated and scored as the service would: (the validated request or None, the probability or
    NaN, the error or None) per row. A row's failure is its own: the others are scored."""
    columns = list(PROBLEM.request_columns())
    requests: list[dict[str, Any] | None] = []
    errors: list[str | None] = []
    for record in frame[columns].to_dict(orient="records"):
        try:
            requests.append(model.model_validate({k: plain(v) for k, v in record.items()}).model_dump())
            errors.append(None)
        except ValidationError as exc:
            requests.append(None)
            errors.append(_first_error(exc))
    valid = [i for i, request in enumerate(requests) if request is not None]
    for index, field, value in predictor.codes.unknown([requests[i] for i in valid]):  # type: ignore[misc]
        row = valid[index]
        errors[row] = f"{field}: {value!r} is not on file (the model knows no such {field})"
        requests[row] = None
    valid = [i for i, request in enumerate(requests) if request is not None]
    proba = np.full(len(requests), np.nan)
    if valid:
        scored, _ = serving.score_each(predictor.predict, [requests[i] for i in valid])  # type: ignore[misc]
        for row, p in zip(valid, scored, strict=True):
            if p is None:
                errors[row] = "the model could not score this flight"
            else:
                proba[row] = p
    return requests, proba, errors


# --- Writing -----------------------------------------------------------------------------------


def _arrow_type(annotation: Any) -> pa.DataType:
    """The Arrow type of a request field: ``int | None`` is a nullable int64, and so on."""
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = options[0]
    for python, arrow in ((bool, pa.bool_()), (int, pa.int64()), (float, pa.float64()), (str, pa.string())):
        if isinstance(annotation, type) and issubclass(annotation, python):
            return arrow
    raise TypeError(f"no Arrow type for the request field type {annotation!r}")


def output_schema(model: type[BaseModel]) -> pa.Schema:
    fields = [pa.field(REQUEST_ID, pa.string(), nullable=False)]
    fields += [pa.field(c, _arrow_type(model.model_fields[c].annotation)) for c in PROBLEM.request_columns()]
    fields += [
        pa.field("delay_probability", pa.float64()),
        pa.field("delayed", pa.bool_()),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("scored_at", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("error", pa.string()),
    ]
    return pa.schema(fields)


class _Writer:
    """Row groups appended to a Parquet or CSV file of one schema."""

    def __init__(self, path: Path, kind: str, schema: pa.Schema) -> None:
        self.schema = schema
        sink = pa.OSFile(str(path), "wb")
        self._sink = sink
        if kind == ".parquet":
            self._writer: Any = pq.ParquetWriter(sink, schema, compression="zstd")
        else:
            self._writer = pa_csv.CSVWriter(sink, schema)

    def write(self, columns: dict[str, Any]) -> None:
        self._writer.write_table(pa.table(columns, schema=self.schema))

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


# --- The run -----------------------------------------------------------------------------------


def resolve(version: str | None, alias: str | None) -> registry.Version:
    """The registered version asked for: ``--version N``, else the one holding ``--alias``."""
    if version is not None and alias is not None:
        raise BatchError("give --version or --alias, not both")
    if version is not None:
        try:
            return registry.get(version)
        except registry.RegistryError as exc:
            raise BatchError(f"--version {version}: {exc}") from exc
    held = registry.by_alias(alias or "production")
    if held is None:
        raise BatchError(
            f"--alias {alias or 'production'}: no version of {registry.MODEL_NAME} holds it (`flightdelay release` "
            "registers one, `flightdelay promote production` gives it the alias; or name one with --version N)"
        )
    return held


def load(version: registry.Version, target: Path) -> serving.Predictor:
    """The version's serving bundle from the registry, once its model hashes to what the version records."""
    try:
        return serving.Predictor.load(registry.verified_bundle(version, target))
    except registry.RegistryError as exc:
        raise BatchError(f"{exc}: not scoring with it") from exc


@dataclass
class _Ids:
    """Each row's request id: the input's own column, else ``<prefix>-<row>``; and whether any repeats."""

    source: Path
    prefix: str
    hashes: list[np.ndarray]

    def of(self, frame: pd.DataFrame, offset: int) -> list[str]:
        if REQUEST_ID not in frame.columns:
            ids = [f"{self.prefix}-{offset + i:09d}" for i in range(len(frame))]
        else:
            given = frame[REQUEST_ID].astype("string")
            blank = (given.isna() | (given.str.strip() == "")).to_numpy()
            if blank.any():
                row = offset + int(np.flatnonzero(blank)[0])
                raise BatchError(f"--input {self.source}: row {row} has no {REQUEST_ID}")
            ids = given.tolist()
        self.hashes.append(pd.util.hash_array(np.asarray(ids, dtype=object)))
        return ids

    def check_unique(self) -> None:
        hashes = np.concatenate(self.hashes) if self.hashes else np.array([], dtype=np.uint64)
        if len(np.unique(hashes)) != len(hashes):
            raise BatchError(
                f"--input {self.source}: request ids repeat; the monitor joins labels by id, so each must be unique"
            )


@dataclass(frozen=True)
class _Scoring:
    """A version's predictor, the request model and the run's time: the output's columns for each chunk."""

    predictor: serving.Predictor
    model: type[BaseModel]
    version: registry.Version
    scored_at: pd.Timestamp

    def table_of(self, chunk: tuple[pd.DataFrame, list[str]]) -> dict[str, Any]:
        return self.table(*chunk)

    def table(self, frame: pd.DataFrame, ids: list[str]) -> dict[str, Any]:
        requests, proba, errors = score_chunk(self.predictor, self.model, frame)
        unscored = np.isnan(proba)
        rows = len(frame)
        table: dict[str, Any] = {REQUEST_ID: ids}
        for column in PROBLEM.request_columns():
            table[column] = [request[column] if request else None for request in requests]
        return table | {
            "delay_probability": pa.array(proba, mask=unscored),
            "delayed": pa.array(proba >= self.predictor.threshold, mask=unscored),
            "threshold": [self.predictor.threshold] * rows,
            "model": [self.version.name] * rows,
            "model_version": [self.version.number] * rows,
            "scored_at": [self.scored_at] * rows,
            "error": errors,
        }


@dataclass(frozen=True)
class _Remote:
    """What a worker needs to score a run's chunks: the version, the run's time, the registry, the run's token."""

    version: registry.Version
    scored_at: pd.Timestamp
    tracking_uri: str
    run: str


_WORKER_RUN: dict[str, tuple[_Scoring, Path]] = {}  # on a Dask worker: the run it serves now, and its bundle
_WORKER_LOCK = threading.Lock()


def _scored_on_worker(remote: _Remote, chunk: tuple[pd.DataFrame, list[str]]) -> dict[str, Any]:
    """A chunk's output columns, on a Dask worker: the version loaded (and its hash checked) once a run."""
    with _WORKER_LOCK:
        if remote.run not in _WORKER_RUN:
            import mlflow

            mlflow.set_tracking_uri(remote.tracking_uri)
            for _, earlier in _WORKER_RUN.values():  # an earlier run's model is not needed again
                shutil.rmtree(earlier, ignore_errors=True)
            _WORKER_RUN.clear()
            bundle = Path(tempfile.mkdtemp(prefix="flightdelay-batch-"))
            atexit.register(shutil.rmtree, bundle, ignore_errors=True)
            predictor = load(remote.version, bundle)
            _WORKER_RUN[remote.run] = (
                _Scoring(predictor, PROBLEM.request_model(), remote.version, remote.scored_at),
                bundle,
            )
        scoring, _ = _WORKER_RUN[remote.run]
    return scoring.table_of(chunk)


def mlflow_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def run(
    source: Path,
    output: Path,
    version: registry.Version,
    *,
    chunk_rows: int = 50_000,
    progress: bool = True,
    now: pd.Timestamp | None = None,
    engine: Engine = Engine(),  # noqa: B008 - a frozen settings model
) -> Scored:
    """Score ``source`` into ``output`` with ``version`` (see the module's doc); the registry must be connected.

    ``engine`` (``params.engine``) says where the chunks are scored: here, or on a Dask cluster's workers, which
    are sent the chunks this process reads and send back their scores in order (``io.engines``)."""
    from tqdm import tqdm

    if chunk_rows < 1:
        raise BatchError(f"--chunk-rows {chunk_rows}: must be at least 1")
    if not source.is_file():
        raise BatchError(f"--input {source}: no such file")
    suffix(source, "--input")
    kind = suffix(output, "--output")
    if output.resolve() == source.resolve():
        raise BatchError(f"--output {output} is the input: write the scores elsewhere")
    scored_at = (now or pd.Timestamp.now(tz="UTC")).floor("s")
    ids = _Ids(source, id_prefix(source), [])
    rows = failed = 0
    model = PROBLEM.request_model()
    with tempfile.TemporaryDirectory() as tmp, atomic_path(output) as staged, ExitStack() as stack:
        # Loaded here whatever the engine: a version that fails its hash check stops the run before any worker.
        scoring = _Scoring(load(version, Path(tmp)), model, version, scored_at)
        runner = stack.enter_context(engines.engine(engine))
        score: Callable[[tuple[pd.DataFrame, list[str]]], dict[str, Any]] = scoring.table_of
        if isinstance(runner, engines.OnDask):  # each worker loads the version itself, once a run
            score = partial(_scored_on_worker, _Remote(version, scored_at, mlflow_uri(), os.urandom(8).hex()))
        bar = stack.enter_context(
            tqdm(total=count_rows(source), unit="rows", unit_scale=True, file=sys.stderr, disable=not progress)
        )
        writer = _Writer(staged, kind, output_schema(model))

        def numbered() -> Iterator[tuple[pd.DataFrame, list[str]]]:
            offset = 0
            for frame in chunks(source, chunk_rows):
                yield frame, ids.of(frame, offset)
                offset += len(frame)

        try:
            for table in runner.each(numbered(), score):
                writer.write(table)
                done = len(table[REQUEST_ID])
                rows += done
                failed += table["delay_probability"].null_count
                bar.update(done)
        finally:
            writer.close()
        if rows == 0:
            raise BatchError(f"--input {source}: the file holds no rows")
        ids.check_unique()  # before the output is moved into place
    return Scored(output, rows, failed, version)
