"""The BentoML service: one flight or a batch in, delay probabilities and decisions out.

``FlightDelay`` validates a request, scores it in its own worker (``serving.Predictor``: the pipeline's
feature code on column arrays, the fitted trees through ``core.scoring``, a fraction of a millisecond
for a flight, shared with the requests the worker reads in the same turn: ``serving.Gathered``),
answers, and logs the prediction from a background thread. A JSON request reaches the API method
without BentoML's per-request machinery (``DirectJSON``). With ``FLIGHTDELAY_SHADOW_URL``
set, it then copies the request to that shadow service and logs the shadow's answers beside its own
(``flightdelay.shadow``); the shadow never delays or changes an answer. With ``FLIGHTDELAY_AB_URL`` and
``FLIGHTDELAY_AB_SHARE`` set, it is variant A of an A/B test, and that share of requests is answered by
variant B (``flightdelay.ab``).

Every error response has one shape (``serving.error_body``) that names each field as the caller sent it;
a 4xx logs one line, a 5xx its traceback.

Serve it with ``nox -s serve -- --port 3000``; the model comes from the BentoML model store under
the tag in ``FLIGHTDELAY_MODEL_TAG`` or ``bento-tag.txt`` beside this module (written by ``flightdelay bento-model``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import bentoml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

# One OpenMP thread for scikit-learn unless told otherwise: OpenMP's spinning threads fight the API process
# and each other for the cores. libgomp reads this once, when scikit-learn loads it. (The trees run in
# onnxruntime, whose threads are MODEL_THREADS below.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

from flightdelay.ab import ABSettings, Challenger, assigned_to_b
from flightdelay.problem import PROBLEM
from flightdelay.serving import (
    Gathered,
    PredictionLog,
    Predictor,
    as_dicts,
    as_error_body,
    error_body,
    invalid_body,
    is_client_error,
    log_line,
    observe_all,
    score_each,
)
from flightdelay.shadow import Mirror, ShadowSettings

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
# One worker per core (two here), each a whole service: at a millisecond a flight, batching across callers
# or a second service for the model only added a hop (the README's benchmark section has the figures).
WORKERS = int(os.environ.get("FLIGHTDELAY_WORKERS", "2"))
INLINE_MAX_ROWS = 100
# The threads that score a large batch's trees (core.scoring.PARALLEL_MIN_ROWS rows or more): a lone caller's
# 1,000 flights take half the time on two (README, benchmark). Smaller batches stay on one.
MODEL_THREADS = int(os.environ.get("FLIGHTDELAY_MODEL_THREADS", "2"))
# BentoML's access log, a line per request, off unless FLIGHTDELAY_ACCESS_LOG=1: the worker formats each
# line and the serving process relays it. Every prediction is in the prediction log with its request id,
# every request in /metrics, and every error in the server log.
ACCESS_LOG = os.environ.get("FLIGHTDELAY_ACCESS_LOG", "0") == "1"
# The API routes' JSON requests skip BentoML's request path (``DirectJSON``) unless FLIGHTDELAY_DIRECT_JSON=0.
DIRECT_JSON = os.environ.get("FLIGHTDELAY_DIRECT_JSON", "1") != "0"
# BentoML's OpenTelemetry middleware made a span, with attributes and metrics of its own, for every
# request even with no exporter configured: about 0.4 ms of a worker's time (README, benchmark), more than
# a flight's features and trees. The prediction routes skip it unless FLIGHTDELAY_TRACE_PREDICTIONS=1;
# their count and duration are in /metrics either way.
TRACED = os.environ.get("FLIGHTDELAY_TRACE_PREDICTIONS", "0") == "1"
MAX_BODY_BYTES = 4 * 2**20  # a full batch of 1,000 flights is about 0.7 MiB
Flight = PROBLEM.request_model(examples=PROBLEM.example)
_as_dict = as_dicts(Flight)  # a validated flight's fields, as model_dump gives them


class Prediction(BaseModel):
    delay_probability: float = Field(ge=0, le=1, description="probability of arriving 15+ minutes late")
    delayed: bool = Field(description="delay_probability >= threshold")
    threshold: float = Field(description="the cost-minimising threshold chosen in evaluation")
    model: str
    model_version: str
    bento_tag: str | None
    request_id: str
    variant: str | None = Field(
        default=None, description="the A/B test's variant that answered, a or b; null outside one"
    )


def _model_tag() -> str:
    tag = os.environ.get("FLIGHTDELAY_MODEL_TAG")
    if tag:
        return tag
    pinned = Path(__file__).with_name("bento-tag.txt")
    if pinned.is_file():
        return pinned.read_text().strip()
    raise RuntimeError("no model tag: run `flightdelay bento-model` or set FLIGHTDELAY_MODEL_TAG")


UNKNOWN = bentoml.metrics.Counter(
    name="flightdelay_unknown_category_values",
    documentation="Categorical values the model never saw (treated as missing, as in the pipeline)",
)
DROPPED = bentoml.metrics.Counter(
    name="flightdelay_prediction_log_dropped",
    documentation="Prediction log records dropped because the sink was full or unavailable",
)

AB = bentoml.metrics.Counter(
    name="flightdelay_ab_requests",
    documentation="Requests assigned to A/B variant B, by outcome (answered; failed or timeout: A answered)",
    labelnames=["outcome"],
)
SHADOW = bentoml.metrics.Counter(
    name="flightdelay_shadow_requests",
    documentation="Requests copied to the shadow service, by outcome (answered, failed, timeout, skipped)",
    labelnames=["outcome"],
)

PROBABILITY = bentoml.metrics.Histogram(
    name="flightdelay_delay_probability",
    documentation="Predicted delay probabilities: their mean against the reference rate is the drift gauge",
    buckets=[round(0.05 * i, 2) for i in range(1, 20)],
)
REFERENCE = bentoml.metrics.Gauge(
    name="flightdelay_reference_delay_rate",
    documentation="The delay rate of the evaluation's test month, which the mean prediction should track",
    multiprocess_mode="max",
)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


def _without_client_errors(record: logging.LogRecord) -> bool:
    return not (record.exc_info and is_client_error(record.exc_info[1]))


class ClientErrors:
    """ASGI middleware: every error response in the one shape of ``serving.error_body``; a 4xx logged as one line.

    BentoML answers a request that fails validation, and any exception of ours, in shapes of its own (three of
    them, see ``serving.as_error_body``); this rewrites each error body on its way out. It also logs each 4xx
    as one line (method, path, status and what was wrong), where BentoML logs a traceback.
    """

    # BentoML logs every exception its API endpoint catches with a traceback, a bad request's as well: its
    # `log_exception` in the private module bentoml._internal.server.http_app, which no setting turns off.
    # A 4xx is the caller's mistake, logged once here, so its traceback is dropped; a 5xx keeps its own.
    # If BentoML moves that logger, the tracebacks come back (the service test counts them).
    BENTOML_LOGGER = "bentoml._internal.server.http_app"

    def __init__(self, app: Any) -> None:
        self.app = app
        logging.getLogger(self.BENTOML_LOGGER).addFilter(_without_client_errors)  # once: filters are a set

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held back until the body is known
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = as_error_body(start["status"], b"".join(chunks))
            if start["status"] < 500:
                logger.warning("%s", log_line(scope["method"], scope["path"], body))
            encoded = _json(body)
            headers = [
                (name, value)
                for name, value in start.get("headers", [])
                if name.lower() not in (b"content-length", b"content-type")
            ]
            headers += _json_headers(encoded)
            await send(start | {"headers": headers})
            await send({"type": "http.response.body", "body": encoded})

        await self.app(scope, receive, rewrite)


class _CallerGoneError(Exception):
    """The caller went away before its request body arrived."""


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _CallerGoneError
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


# What BentoML answers for a 5xx, with the cause in the server log only (its `api_endpoint_wrapper`).
UNEXPECTED = "An unexpected error has occurred, please check the server log."


class DirectJSON:
    """ASGI middleware: a JSON POST to an API route runs the API method without BentoML's per-request machinery.

    BentoML's own path for a request (a Starlette ``Request``, the service context, its endpoint wrapper
    and IO descriptors, and the OpenTelemetry middleware) cost more than the flight's features and trees:
    a BentoML service answering a constant reached a third of the floor baseline's throughput (the README's
    benchmark section has the figures). This runs the same method on the same input model that BentoML
    derives from its signature (``input_spec``, which is also the OpenAPI schema), encodes the answer as
    BentoML's JSON serde does, and answers errors as BentoML's endpoint does (``ClientErrors`` then puts
    them in the one shape and logs them). What is valid, what is answered and every middleware outside this
    one (metrics, the timeout and the concurrency limit, the body limit) stay BentoML's and ours.

    Anything else passes through to BentoML: another method or path, a multipart or form body, and an
    API method this path does not cover (a batchable, streaming, task or context-taking one, or a sync one).
    ``FLIGHTDELAY_DIRECT_JSON=0`` turns it off, and every request takes BentoML's path.
    """

    # BentoML reads these media types with serdes of their own; every other one (or none) as JSON.
    OTHER_SERDES = frozenset(
        {b"multipart/form-data", b"application/x-www-form-urlencoded", b"application/vnd.bentoml+pickle"}
    )

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        self.apis = {api.route: api for api in service.apis.values() if self.covers(api)}
        # Each answer as JSON of its declared type: BentoML's serde writes the same JSON (spaced out, for a list).
        self.answers = {route: TypeAdapter(get_type_hints(api.func)["return"]) for route, api in self.apis.items()}
        self.headers = [(b"server", f"BentoML Service/{service.name}".encode())]

    @staticmethod
    def covers(api: Any) -> bool:
        plain = not (api.batchable or api.is_stream or api.is_task or api.ctx_param)
        return plain and asyncio.iscoroutinefunction(api.func)

    def _direct(self, scope: dict[str, Any]) -> Any:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        api = self.apis.get(scope["path"])
        if api is None:
            return None
        media_type = next((value for name, value in scope["headers"] if name == b"content-type"), b"")
        return None if media_type.split(b";")[0].strip().lower() in self.OTHER_SERDES else api

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        api = self._direct(scope)
        if api is None:
            await self.app(scope, receive, send)
            return
        try:
            status, body = 200, await self.answer(api, await _body(receive))
        except _CallerGoneError:
            return
        except ValidationError as exc:
            status, body = 400, _json(invalid_body(400, exc.errors(include_context=False, include_input=False)))
        except Exception as exc:
            code = getattr(exc, "error_code", HTTPStatus.INTERNAL_SERVER_ERROR)
            status = int(code) if isinstance(exc, bentoml.exceptions.BentoMLException) else 500
            if status >= 500:
                logger.error("Exception on %s [%s]", scope["path"], scope["method"], exc_info=True)
            body = _json(error_body(status, str(exc) if status < 500 else UNEXPECTED))
        headers = _json_headers(body) + self.headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(self, api: Any, body: bytes) -> bytes:
        """What BentoML's endpoint answers, for a body its JSON serde reads (``JSONSerde`` in 1.4.40)."""
        request = api.input_spec.model_validate_json(body or b"{}")
        arguments = {name: getattr(request, name) for name in api.input_spec.model_fields}  # the class's: cheap
        output = await api.func(bentoml.get_current_service(), **arguments)
        return self.answers[api.route].dump_json(output)


class BodyTooLarge(bentoml.exceptions.BentoMLException):
    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413, whether or not they declare a length."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: str) -> str:
        return f"request body is {size} bytes; the limit is {self.max_bytes} bytes (at most {MAX_BATCH} flights)"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = _json(error_body(413, self._message(declared.decode())))
            await send({"type": "http.response.start", "status": 413, "headers": _json_headers(body)})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self._message(f"more than {received}"))
            return message

        await self.app(scope, limited, send)


@bentoml.service(
    traffic={"timeout": 30, "max_concurrency": 256},
    workers=WORKERS,
    resources={"cpu": str(WORKERS)},
    logging={"access": {"enabled": ACCESS_LOG}},
    tracing={} if TRACED else {"excluded_urls": ["/predict$", "/predict_batch$"]},
)
class FlightDelay:
    bundle = bentoml.models.BentoModel(_model_tag())

    def __init__(self) -> None:
        bundle = Path(self.bundle.path)
        self.predictor = Predictor.load(bundle, threads=MODEL_THREADS)
        self.gathered = Gathered(self.predictor.predict, INLINE_MAX_ROWS - 1, on_unseen=UNKNOWN.inc)
        self.codes = self.predictor.codes
        self.threshold = self.predictor.threshold
        if "test_positive_rate" in self.predictor.metadata:
            REFERENCE.set(float(self.predictor.metadata["test_positive_rate"]))
        self.model_name, _, self.model_version = str(self.bundle.tag).partition(":")
        context = bentoml.server_context
        built = context.bento_version not in ("", "not available")
        self.bento_tag = f"{context.bento_name}:{context.bento_version}" if built else None
        sink = Path(os.environ.get("FLIGHTDELAY_PREDICTION_LOG", "logs/predictions.jsonl"))
        self.log = PredictionLog(sink, on_drop=DROPPED.inc)
        shadow = ShadowSettings.from_environment()
        self.mirror = Mirror(shadow, self.log.write, lambda o: SHADOW.labels(outcome=o).inc()) if shadow else None
        test = ABSettings.from_environment()
        self.challenger = Challenger(test, lambda o: AB.labels(outcome=o).inc()) if test else None
        # Everything the worker holds by now (the libraries, the model, the reference tables: some 200,000
        # objects) lives as long as it does. Out of the collector's sight, a full collection no longer walks
        # it all again every few 1,000-flight batches, ~10 ms of the request it lands in (README, benchmark).
        gc.freeze()

    @bentoml.on_shutdown
    async def _close_shadow(self) -> None:
        """Let the copies in flight finish (they log into the prediction log, flushed next: hooks run by name)."""
        if self.mirror is not None:
            await self.mirror.close()
        if self.challenger is not None:
            await self.challenger.close()

    @bentoml.on_shutdown
    def _flush_log(self) -> None:
        """Write what is still queued before the worker exits."""
        self.log.flush(timeout=10)

    async def _answer(
        self, flights: list[dict[str, Any]], where: Callable[[int], tuple[str | int, ...]]
    ) -> list[Prediction]:
        """Predictions for validated flights; ``where(i)`` is where flight ``i`` is in the caller's request."""
        # A code not on file fails validation like any other bad field, so BentoML answers it (and
        # ClientErrors rewrites it) as one.
        self.codes.validate(flights, where)
        now = time.time()
        hexed = os.urandom(16 * len(flights)).hex()  # as uuid4().hex, without an object per flight
        ids = [hexed[32 * i : 32 * (i + 1)] for i in range(len(flights))]
        variant, outputs = None, None
        if self.challenger is not None:  # an A/B test: this service is A
            variant = "a"
            if assigned_to_b(ids[0], self.challenger.settings.share):
                outputs = await self.challenger.answer(flights)  # None: B failed, and A answers
                variant = "a" if outputs is None else "b"
        if outputs is None:
            outputs = await self._score(flights)
        answers, records = [], []
        observe_all(PROBABILITY, [output["delay_probability"] for output in outputs])
        for flight, output, request_id in zip(flights, outputs, ids, strict=True):
            output["request_id"] = request_id
            record = {"time": now, "request_id": request_id, "input": flight, "output": output}
            if variant is not None:
                output["variant"] = record["variant"] = variant
            records.append(record)
            answers.append(Prediction.model_validate(output))  # a check, and cheaper than model_construct
        self.log.write_many(records)
        if self.mirror is not None:
            self.mirror.send(flights, ids, now)  # a task on this event loop: the answer does not wait for it
        return answers

    async def _score(self, flights: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This service's own answers, without request ids."""
        if len(flights) < INLINE_MAX_ROWS:  # with the flights of requests that arrived with it, on the loop
            proba = await self.gathered.score(flights)
        else:  # tens of milliseconds: off the event loop, so the worker's other callers are not held up
            proba, unseen = await asyncio.to_thread(score_each, self.predictor.predict, flights)
            if unseen:
                UNKNOWN.inc(unseen)
        failed = [i for i, p in enumerate(proba) if p is None]
        if failed:
            which = "the flight" if len(flights) == 1 else f"flights {failed[:10]}"
            raise bentoml.exceptions.InternalServerError(f"the model could not score {which}; see the server log")
        return [
            {
                "delay_probability": p,
                "delayed": p >= self.threshold,
                "threshold": self.threshold,
                "model": self.model_name,
                "model_version": self.model_version,
                "bento_tag": self.bento_tag,
            }
            for p in proba
            if p is not None
        ]

    @bentoml.api
    async def predict(self, flight: Flight) -> Prediction:  # type: ignore[valid-type]
        """The delay probability of one flight."""
        return (await self._answer([_as_dict(flight)], lambda _: ("flight",)))[0]

    @bentoml.api
    async def predict_batch(
        self,
        flights: Annotated[list[Flight], Field(min_length=1, max_length=MAX_BATCH)],  # type: ignore[valid-type]
    ) -> list[Prediction]:
        """Delay probabilities of up to 1,000 flights in one call."""
        return await self._answer([_as_dict(f) for f in flights], lambda i: ("flights", i))


# The first added is the outer: ClientErrors sees BodyLimit's 413s and DirectJSON's errors too.
FlightDelay.add_asgi_middleware(ClientErrors)  # type: ignore[attr-defined]
FlightDelay.add_asgi_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # type: ignore[attr-defined]
if DIRECT_JSON:
    FlightDelay.add_asgi_middleware(DirectJSON, service=FlightDelay)  # type: ignore[attr-defined]

# BentoML's HTTP metrics label every request with its path, so each distinct unknown path (a scanner's
# 404s) would add series to /metrics without bound. Paths outside the service's own routes skip those
# metrics and count in one series instead. BentoML builds its middleware stack from this module
# attribute when the server starts, which is why the swap happens here, when the service is imported.
KNOWN_PATHS = frozenset(
    {
        "/",
        "/docs",
        "/docs.json",
        "/schema.json",
        "/metrics",
        "/livez",
        "/readyz",
        "/healthz",
        "/predict",
        "/predict_batch",
    }
)
UNKNOWN_PATHS = bentoml.metrics.Counter(
    name="flightdelay_unknown_path_requests",
    documentation="Requests for paths the service does not serve (not labelled by path, so they add no series)",
)


def _known_path_metrics() -> None:
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "known_paths_only", False):
        return

    class KnownPathMetrics(base):  # type: ignore[misc,valid-type]
        known_paths_only = True

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"].startswith("http") and scope["path"] not in KNOWN_PATHS:
                UNKNOWN_PATHS.inc()
                await self.app(scope, receive, send)
                return
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = KnownPathMetrics  # type: ignore[misc]


_known_path_metrics()
