"""The floor for ``nox -s bench -- serve``: the least a Python web service can do per flight.

FastAPI + uvicorn (``serve.py`` starts it with 2 workers, one OpenMP thread), an async endpoint that
parses the request's JSON and runs the same fitted trees, through the same onnxruntime session, on a
numpy row made ready at start-up from the example flight: no features, no validation, no logging.
The project's service is measured as a fraction of this one's throughput.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI

from flightdelay.core.scoring import CompiledTrees
from flightdelay.problem import PROBLEM
from flightdelay.serving import Predictor


def _ready() -> tuple[CompiledTrees, np.ndarray]:
    predictor = Predictor.load(Path(os.environ["FLIGHTDELAY_BUNDLE"]))
    if predictor.scorer.trees is None:
        raise RuntimeError("the floor runs gradient-boosted trees: set train.estimator: hist_gradient_boosting")
    row, _ = predictor.scorer.encode(PROBLEM.request_features([PROBLEM.example], predictor.codes.references))
    return predictor.scorer.trees, row


_trees, _row = _ready()
app = FastAPI(title="flightdelay floor")


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(body: dict[str, Any]) -> dict[str, float]:
    return {"delay_probability": float(_trees.proba(_row)[0])}
