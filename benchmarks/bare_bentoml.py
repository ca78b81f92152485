"""BentoML's own floor for ``nox -s bench -- serve``: the service's request model and nothing behind it.

The same request validation, workers and settings as ``flightdelay.service`` (access log off), an endpoint
that answers a constant: no features, no model, no log, no middleware of ours. What BentoML's request
path costs by itself, so the benchmark can tell that apart from what the project's code adds.
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from pydantic import Field

from flightdelay.problem import PROBLEM
from flightdelay.service import MAX_BATCH, WORKERS

Flight = PROBLEM.request_model(examples=PROBLEM.example)


@bentoml.service(
    workers=WORKERS, traffic={"timeout": 30, "max_concurrency": 256}, logging={"access": {"enabled": False}}
)
class Bare:
    @bentoml.api
    async def predict(self, flight: Flight) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"delay_probability": 0.5}

    @bentoml.api
    async def predict_batch(
        self,
        flights: Annotated[list[Flight], Field(min_length=1, max_length=MAX_BATCH)],  # type: ignore[valid-type]
    ) -> list[dict[str, Any]]:
        return [{"delay_probability": 0.5} for _ in flights]
