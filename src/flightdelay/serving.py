"""What the service runs, without the web framework: a model bundle, request rows in, predictions or errors out.

The bundle is a directory with the pipeline's model, the problem's reference files, and the threshold
evaluate chose. The problem's own join and feature code, the pipeline's, turn a request into model
inputs (``Problem.request_features``), so serving cannot drift from training; ``core.scoring`` runs
the fitted model on them without scikit-learn's per-call overhead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import queue
import shutil
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import joblib
import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, to_json

from flightdelay.core.scoring import Scorer
from flightdelay.problem import PROBLEM

if TYPE_CHECKING:
    from prometheus_client import Histogram

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


def _unknown(field: str, value: str) -> str:
    return f"unknown {field} {value!r} (not in the reference tables)"


class UnknownCodeError(ValueError):
    """A value the reference tables do not know (the problem's ``unknown_values``): the request is wrong."""

    def __init__(self, field: str, value: str, index: int) -> None:
        super().__init__(f"flights[{index}].{field}: {_unknown(field, value)}")
        self.field, self.value, self.index = field, value, index


# --- Errors as the caller sees them --------------------------------------------------------------
# Every error response has one shape, ``{"error": {"status", "message", "problems": [{"field", "message"}]}}``,
# where ``field`` names the field as the caller wrote it (``flight.carrier``, ``flights[3].carrier``),
# or is null for the request as a whole (malformed JSON, a body too large).


def field_path(loc: Sequence[str | int]) -> str | None:
    """A pydantic error location as the caller wrote it: ``("flights", 3, "carrier")`` is ``flights[3].carrier``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or None


def problems_of(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors (``ValidationError.errors()``) as problems that name each field as the caller wrote it."""
    return [{"field": field_path(error.get("loc", ())), "message": str(error.get("msg", ""))} for error in errors]


def error_body(status: int, message: str, problems: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The one shape of every error response."""
    return {"error": {"status": status, "message": message, "problems": [dict(p) for p in problems]}}


def invalid_body(status: int, errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The error body of a request that failed validation, from pydantic's errors."""
    problems = problems_of(errors)
    return error_body(status, f"{len(problems)} problem{'' if len(problems) == 1 else 's'} in the request", problems)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def as_error_body(status: int, raw: bytes) -> dict[str, Any]:
    """Whatever error body the web layer wrote, in the one shape; one already in it is returned as it is.

    BentoML 1.4.40 writes a failed validation as ``{"error": "1 validation error for Input", "detail":
    [pydantic's errors]}``, its other exceptions as ``{"error": message}`` or, for a 4xx, as
    ``[{"error": message}]``; Starlette's router answers in plain text ("Not Found").
    """
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace").strip()
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if isinstance(body, dict):
        error, detail = body.get("error"), body.get("detail")
        if isinstance(error, dict) and set(error) == {"status", "message", "problems"}:
            return body
        if isinstance(detail, list):
            return invalid_body(status, [d for d in detail if isinstance(d, Mapping)])
        if isinstance(error, str) and error:
            return error_body(status, error)
    return error_body(status, body if isinstance(body, str) and body else _phrase(status))


_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


def log_line(method: str, path: str, body: Mapping[str, Any], shown: int = 3) -> str:
    """One line for the server log: the request, its status and what was wrong (the first ``shown`` problems)."""
    error = body["error"]
    problems = error["problems"]
    said = [f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems[:shown]]
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    line = f"{method} {path} {error['status']}: {'; '.join(said) or error['message']}{more}"
    return line.translate(_CONTROL)  # a field name is the caller's text: no line breaks into the log


def is_client_error(exc: BaseException | None) -> bool:
    """True for what the web layer answers with a 4xx: a request that failed validation, or an exception whose
    ``error_code`` (BentoML's exceptions carry one) is a 4xx."""
    if isinstance(exc, ValidationError):
        return True
    code = getattr(exc, "error_code", None)
    return isinstance(code, int) and 400 <= code < 500


def write_bundle(target: Path, model: Path, raw: Path, metrics: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """Copy the model, the reference tables and the metadata into ``target``; return the metadata."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, target / MODEL_FILE)
    for name in PROBLEM.reference_files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw / name, target / name)
    evaluation = json.loads(metrics.read_text())
    metadata = {
        "threshold": evaluation["threshold"],
        "test_roc_auc": evaluation["test"]["roc_auc"],
        "test_positive_rate": evaluation["test"]["positive_rate"],  # the reference for the drift gauge
    } | extra
    (target / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metadata


@dataclass(frozen=True)
class KnownCodes:
    """The values the bundle's reference tables hold: a request naming others is a bad request."""

    references: Any

    @classmethod
    def load(cls, bundle: Path) -> KnownCodes:
        return cls(PROBLEM.load_references(bundle))

    def unknown(self, flights: Sequence[dict[str, Any]]) -> list[tuple[int, str, str]]:
        """``(index, field, value)`` of every value not on file, in order."""
        return PROBLEM.unknown_values(flights, self.references)

    def check(self, flights: Sequence[dict[str, Any]]) -> None:
        """Raise :class:`UnknownCodeError` for the first request with a value not on file."""
        for index, field, value in self.unknown(flights)[:1]:
            raise UnknownCodeError(field, value, index)

    def validate(self, flights: Sequence[dict[str, Any]], where: Callable[[int], tuple[str | int, ...]]) -> None:
        """Raise a pydantic ``ValidationError`` naming every value not on file, as the request model would: the
        field of request ``i`` is at ``where(i) + (field,)`` in the caller's request."""
        unknown = self.unknown(flights)
        if unknown:
            raise ValidationError.from_exception_data(
                PROBLEM.entity.capitalize(),
                [
                    InitErrorDetails(
                        type=PydanticCustomError("unknown_code", "{message}", {"message": _unknown(field, value)}),
                        loc=(*where(index), field),
                        input=value,
                    )
                    for index, field, value in unknown
                ],
            )


@dataclass(frozen=True)
class Predictor:
    scorer: Scorer
    codes: KnownCodes
    metadata: dict[str, Any]

    @classmethod
    def load(cls, bundle: Path, threads: int = 1) -> Predictor:
        """The bundle's predictor; ``threads`` score a large batch's trees (``core.scoring.Scorer.of``)."""
        model = joblib.load(bundle / MODEL_FILE)
        return cls(
            scorer=Scorer.of(model, PROBLEM.categorical, PROBLEM.numeric, threads),
            codes=KnownCodes.load(bundle),
            metadata=json.loads((bundle / METADATA_FILE).read_text()),
        )

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    def rows(self, flights: Sequence[dict[str, Any]]) -> pd.DataFrame:
        """The joined-table rows for request dicts; raises :class:`UnknownCodeError` on unknown values."""
        self.codes.check(flights)
        return PROBLEM.request_rows(flights, self.codes.references)

    def predict(self, flights: Sequence[dict[str, Any]]) -> tuple[np.ndarray, int]:
        """Probabilities of the positive class for request dicts, and the number of unseen categorical values."""
        self.codes.check(flights)
        return self.scorer.score(PROBLEM.request_features(flights, self.codes.references))


def score_each(
    predict: Callable[[Sequence[dict[str, Any]]], tuple[np.ndarray, int]], flights: Sequence[dict[str, Any]]
) -> tuple[list[float | None], int]:
    """Score the flights together; if that fails, one at a time, so that a row's failure stays its own.

    Returns a probability per flight (None where that flight alone could not be scored) and the count of
    unknown categories: the error names the flights that failed, not the whole batch.
    """
    try:
        proba, unseen = predict(flights)
        return [float(p) for p in proba], unseen
    except Exception:  # any row's failure: isolate it below
        if len(flights) == 1:
            logger.exception("could not score a flight")
            return [None], 0
    scored: list[float | None] = []
    total = 0
    for flight in flights:
        (one,), unseen = score_each(predict, [flight])
        scored.append(one)
        total += unseen
    return scored, total


class Gathered:
    """Requests that arrive together, scored in one call: what a worker's event loop starts in one turn.

    Under load, a worker's loop reads several requests in one turn. Each request's flights wait for that
    turn to end (``loop.call_soon``: no timer, so a lone caller waits for nothing) and are scored with the
    others in one call of ``predict``: the features and the trees cost about as much for thirty flights as
    for one. ``score_each`` keeps a flight's failure its own, and every feature is row-wise, so a flight's
    probability does not depend on its neighbours (``tests/problem/test_features.py``). A call holds at
    most ``max_rows`` flights; a request that would take it past that starts the next call.
    """

    def __init__(
        self,
        predict: Callable[[Sequence[dict[str, Any]]], tuple[np.ndarray, int]],
        max_rows: int,
        on_unseen: Callable[[int], object] = lambda n: None,
    ) -> None:
        self.predict, self.max_rows, self.on_unseen = predict, max_rows, on_unseen
        self._waiting: list[tuple[Sequence[dict[str, Any]], asyncio.Future[list[float | None]]]] = []
        self._rows = 0

    def score(self, flights: Sequence[dict[str, Any]]) -> asyncio.Future[list[float | None]]:
        """A future of each flight's probability (None where that flight alone could not be scored)."""
        loop = asyncio.get_running_loop()
        if self._rows + len(flights) > self.max_rows:
            self.flush()
        if not self._waiting:
            loop.call_soon(self.flush)
        future: asyncio.Future[list[float | None]] = loop.create_future()
        self._waiting.append((flights, future))
        self._rows += len(flights)
        return future

    def flush(self) -> None:
        waiting, self._waiting, self._rows = self._waiting, [], 0
        if not waiting:
            return
        try:
            proba, unseen = score_each(self.predict, [flight for flights, _ in waiting for flight in flights])
        except BaseException as exc:
            # score_each catches the model's errors: what gets here is a bug, and each caller hears of it.
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            raise
        if unseen:
            self.on_unseen(unseen)
        start = 0
        for flights, future in waiting:
            if not future.done():  # a caller that went away has its future cancelled
                future.set_result(proba[start : start + len(flights)])
            start += len(flights)


_SCALARS = frozenset({bool, int, float, str, type(None)})


def as_dicts(model: type[BaseModel]) -> Callable[[BaseModel], dict[str, Any]]:
    """``model_dump`` for instances of a request model, at a tenth of the cost where that is the same thing.

    A request model derived from the schema has scalar fields only, forbids extra ones and dumps no computed
    or custom-serialised field: for such a model an instance's ``__dict__`` is what ``model_dump`` returns,
    and a copy of it costs 0.3 ms for 1,000 flights against 3-6 ms (README, benchmark). Any other model
    is dumped.
    """
    decorators = model.__pydantic_decorators__
    plain = (
        all(set(get_args(field.annotation) or (field.annotation,)) <= _SCALARS for field in model.model_fields.values())
        and model.model_config.get("extra") != "allow"
        and not model.model_computed_fields
        and not decorators.field_serializers
        and not decorators.model_serializers
    )
    if plain:
        return lambda request: dict(vars(request))
    return lambda request: request.model_dump()


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """``histogram.observe(amount)`` for each amount, in one write per bucket rather than two per amount.

    BentoML's workers run prometheus_client in its multiprocess mode, where every write takes a lock and
    stores the value in a memory-mapped file: observing a 1,000-flight batch's probabilities one by one took
    ~5 ms, a tenth of its time in the worker (README, benchmark). prometheus_client (0.26) has no bulk
    observe, so this updates its histogram's own values (``_upper_bounds``, ``_buckets``, ``_sum``) as
    ``observe`` does; ``tests/unit/test_observe_all.py`` pins the outcome to ``observe``'s.
    """
    if not amounts:
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    bounds = histogram._upper_bounds
    counts = Counter(bisect_left(bounds, amount) for amount in amounts if not math.isnan(amount))
    histogram._sum.inc(sum(amounts))
    for bucket, count in counts.items():
        histogram._buckets[bucket].inc(count)


def json_line(record: Mapping[str, Any]) -> bytes:
    """A record as one line of JSON: orjson's, and pydantic's ``to_json`` for what orjson refuses.

    orjson writes 1,000 flights' records in 2.8 ms against 6.5 for ``to_json``, in a thread that holds the
    GIL meanwhile (README, benchmark). The bytes are ``to_json``'s for what the service's records hold
    (strings, finite numbers, booleans, null). Where they differ, orjson's are the better JSON: a numpy
    integer or boolean is a number or a boolean (``to_json`` wrote its ``str``), and NaN is null (``to_json``
    wrote ``NaN``, which is not JSON). orjson refuses an integer past 64 bits and a key that is not a
    string; ``to_json`` writes those records.
    """
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return to_json(record, fallback=str) + b"\n"


LOG_MAX_BYTES = 100 * 2**20
LOG_BACKUPS = 5  # at most 6 files of 100 MiB: well inside the pod's 1 GiB log volume


def rotated(path: Path) -> list[Path]:
    """The log and its rotated files, oldest first: ``path.N`` ... ``path.1``, then ``path``."""
    backups = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()), key=lambda p: -int(p.suffix[1:])
    )
    return [*backups, *([path] if path.exists() else [])]


class PredictionLog:
    """Predictions as JSON lines, written by a background thread, in files rotated by size.

    A request only puts its record on a bounded queue: a slow, full or broken sink drops records
    (counted through ``on_drop``) and never delays or fails a prediction. The thread wakes at most every
    ``gather_seconds`` and writes what has queued up since. The file rolls over to
    ``path.1`` (``path.1`` to ``path.2``, ...) before a write would take it past ``max_bytes``, and the
    oldest of ``backups`` rolled files goes: the log can never fill the volume it lives on. A log
    collector tailing the directory ships the files off the pod; the monitor reads them in order.
    """

    def __init__(
        self,
        path: Path,
        capacity: int = 10_000,
        on_drop: Callable[[int], object] = lambda n: None,
        *,
        max_bytes: int = LOG_MAX_BYTES,
        backups: int = LOG_BACKUPS,
        gather_seconds: float = 0.2,
    ) -> None:
        self.path = path
        self.gather_seconds = gather_seconds
        self.max_bytes = max_bytes
        self.backups = backups
        self.dropped = 0
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._capacity = capacity
        self._queued = 0  # records waiting, under _lock: the queue holds each write's list of records
        self._queue: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._drain, name="prediction-log", daemon=True).start()

    def write(self, record: dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict[str, Any]]) -> None:
        """Queue a request's records in one step (a batch of 1,000 flights is one put, not 1,000)."""
        with self._lock:
            room = self._capacity - self._queued
            kept = records if len(records) <= room else records[: max(room, 0)]
            self._queued += len(kept)
        if kept:
            self._queue.put(kept)
        if len(kept) < len(records):
            self._drop(len(records) - len(kept))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record is written or dropped; False if that takes over ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._queued:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _rotate(self) -> None:
        oldest = self.path.with_name(f"{self.path.name}.{self.backups}")
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups:
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()

    def _drop(self, count: int) -> None:
        with self._lock:
            self.dropped += count
        self._on_drop(count)

    def _drain(self) -> None:
        while True:
            batch = [*self._queue.get()]  # a copy: the list is the writer's
            # Then wait for more, without the GIL: a wake-up per record, each taking the GIL from the request
            # threads, cost 40% of the service's throughput at 32 concurrent callers (README, benchmark).
            time.sleep(self.gather_seconds)
            while len(batch) < 10_000:
                try:
                    batch += self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                lines = b"".join(json_line(record) for record in batch)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size + len(lines) > self.max_bytes:
                    self._rotate()
                with self.path.open("ab") as sink:
                    sink.write(lines)
            except OSError:
                self._drop(len(batch))
            finally:
                with self._lock:
                    self._queued -= len(batch)
