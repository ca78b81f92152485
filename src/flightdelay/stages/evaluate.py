"""Evaluate: choose the threshold on the validation month, score the test month, write metrics and plots."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flightdelay.core import metrics
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet, write_json
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def predict(model: Any, rows: pd.DataFrame) -> np.ndarray:
    """The model's probabilities of the positive class for featurized rows."""
    return np.asarray(model.predict_proba(rows[list(PROBLEM.features)])[:, 1], dtype=float)


def assess(params: Params, model: Any, valid: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """Metrics, slices and curves of ``model``: the threshold comes from ``valid`` only."""
    y_valid, p_valid = valid[PROBLEM.label].to_numpy(), predict(model, valid)
    y_test, p_test = test[PROBLEM.label].to_numpy(), predict(model, test)
    threshold, valid_cost = metrics.choose_threshold(y_valid, p_valid, params.evaluate.costs)
    predicted = (p_test >= threshold).astype(int)

    def period(rows: pd.DataFrame) -> int:
        return int(PROBLEM.period(rows).max())

    return {
        "metrics": {
            # Which months were scored (YYYYMM), so a report can tell when the test month moved.
            "periods": {"test": period(test), "valid": period(valid)},
            "threshold": round(threshold, 6),
            "test": metrics.rounded(metrics.test_scores(y_test, p_test, threshold, params.evaluate.costs)),
            "valid": metrics.rounded(metrics.score(y_valid, p_valid, threshold) | {"expected_cost": valid_cost}),
        },
        "slices": metrics.slice_scores(test, y_test, p_test, threshold, params.evaluate.slices),
        "curves": metrics.curves(y_test, p_test, params.evaluate.plot_points),
        "confusion": metrics.confusion_rows(y_test, predicted, PROBLEM.classes),
    }


def evaluate(params: Params) -> None:
    """Write ``paths.metrics``, ``paths.slices`` and the plots under ``paths.plots``; log them to MLflow."""
    model = dvc.load_model(Path.cwd(), params.paths.model)  # the bytes dvc.lock records for train, or an error
    result = assess(params, model, read_parquet(params.paths.valid), read_parquet(params.paths.test))
    write_json(params.paths.metrics, result["metrics"])
    write_json(params.paths.slices, result["slices"])
    for name, rows in result["curves"].items():
        write_json(params.paths.plots / f"{name}.json", rows, indent=None)
    write_json(params.paths.plots / "confusion.json", result["confusion"], indent=None)
    from flightdelay.io import tracking

    tracking.configure(Path.cwd())
    run_id, _ = tracking.log_evaluation(Path.cwd(), params.paths.model, result["metrics"], result["slices"])
    log.info("test: %s; MLflow run %s", json.dumps(result["metrics"]["test"]), run_id)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("evaluate", evaluate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
