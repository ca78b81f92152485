"""The BentoML service: one flight or a batch in, delay probabilities and decisions out.

Serve it with ``nox -s serve -- --port 3000``; the model comes from the BentoML model store under
the tag in ``FLIGHTDELAY_MODEL_TAG`` or ``bento-tag.txt`` beside this module (written by ``flightdelay bento-model``).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import BaseModel, Field

from flightdelay import schemas
from flightdelay.serving import EXAMPLE, PredictionLog, Predictor, UnknownCodeError

MAX_BATCH = 1000
Flight = schemas.request_model(examples=EXAMPLE)


class Prediction(BaseModel):
    delay_probability: float = Field(ge=0, le=1, description="probability of arriving 15+ minutes late")
    delayed: bool = Field(description="delay_probability >= threshold")
    threshold: float = Field(description="the cost-minimising threshold chosen in evaluation")
    model: str
    model_version: str
    bento_tag: str | None
    request_id: str


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


@bentoml.service(traffic={"timeout": 30, "max_concurrency": 256}, resources={"cpu": "1"})
class FlightDelay:
    bundle = bentoml.models.BentoModel(_model_tag())

    def __init__(self) -> None:
        self.predictor = Predictor.load(Path(self.bundle.path))
        self.model_tag = str(self.bundle.tag)
        context = bentoml.server_context
        built = context.bento_version not in ("", "not available")
        self.bento_tag = f"{context.bento_name}:{context.bento_version}" if built else None
        sink = Path(os.environ.get("FLIGHTDELAY_PREDICTION_LOG", "logs/predictions.jsonl"))
        self.log = PredictionLog(sink, on_drop=DROPPED.inc)

    @bentoml.on_shutdown
    def _flush_log(self) -> None:
        """Write what is still queued before the worker exits."""
        self.log.flush(timeout=10)

    def _answer(self, flights: list[dict[str, Any]]) -> list[Prediction]:
        try:
            proba, unseen = self.predictor.predict(flights)
        except UnknownCodeError as exc:
            raise bentoml.exceptions.InvalidArgument(str(exc)) from exc
        if unseen:
            UNKNOWN.inc(unseen)
        name, _, version = self.model_tag.partition(":")
        now = time.time()
        answers = []
        for flight, p in zip(flights, proba, strict=True):
            answer = Prediction(
                delay_probability=float(p),
                delayed=bool(p >= self.predictor.threshold),
                threshold=self.predictor.threshold,
                model=name,
                model_version=version,
                bento_tag=self.bento_tag,
                request_id=uuid.uuid4().hex,
            )
            self.log.write(
                {"time": now, "request_id": answer.request_id, "input": flight, "output": answer.model_dump()}
            )
            answers.append(answer)
        return answers

    @bentoml.api
    def predict(self, flight: Flight) -> Prediction:  # type: ignore[valid-type]
        """The delay probability of one flight."""
        return self._answer([flight.model_dump()])[0]  # type: ignore[attr-defined]

    @bentoml.api
    def predict_batch(
        self,
        flights: Annotated[list[Flight], Field(min_length=1, max_length=MAX_BATCH)],  # type: ignore[valid-type]
    ) -> list[Prediction]:
        """Delay probabilities of up to 1,000 flights in one call."""
        return self._answer([f.model_dump() for f in flights])  # type: ignore[attr-defined]
