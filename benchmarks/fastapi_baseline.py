"""The baseline for ``nox -s bench -- serve``: the same model and features behind plain FastAPI + uvicorn.

Written as a competent engineer would: the same request model, the predictor loaded once at
start-up, a sync endpoint (FastAPI runs it in its thread pool), no batching.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from flightdelay.problem import PROBLEM
from flightdelay.serving import Predictor

Flight = PROBLEM.request_model()
predictor = Predictor.load(Path(os.environ["FLIGHTDELAY_BUNDLE"]))
app = FastAPI(title="flightdelay baseline")


@app.get("/readyz")
def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict(body: dict[str, Flight]) -> dict[str, Any]:  # type: ignore[valid-type]
    proba, _ = predictor.predict([body["flight"].model_dump()])  # type: ignore[attr-defined]
    return {"delay_probability": float(proba[0]), "delayed": bool(proba[0] >= predictor.threshold)}
