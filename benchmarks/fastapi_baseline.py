"""A baseline for ``nox -s bench -- serve``: the same request model, features and model behind plain FastAPI.

Written as a competent engineer would: the same request model, the predictor loaded once at
start-up, an async endpoint (a flight costs a millisecond: a thread hop would cost more); no logging,
no metrics. ``serve.py`` starts it under uvicorn with 2 workers.
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
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(body: dict[str, Flight]) -> dict[str, Any]:  # type: ignore[valid-type]
    proba, _ = predictor.predict([body["flight"].model_dump()])  # type: ignore[attr-defined]
    return {"delay_probability": float(proba[0]), "delayed": bool(proba[0] >= predictor.threshold)}
