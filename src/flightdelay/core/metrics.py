"""Evaluation: the cost-minimising threshold, scores, slices and the curves DVC plots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from flightdelay.settings import Costs


def choose_threshold(y_true: np.ndarray, proba: np.ndarray, costs: Costs) -> tuple[float, float]:
    """The threshold minimising ``fp * FP + fn * FN`` per flight, and that cost.

    Every distinct score is a candidate (predict delayed when ``proba >= threshold``), plus one
    above all scores (never predict delayed). Ties go to the higher threshold.
    """
    if len(proba) == 0:
        raise ValueError("no rows to choose a threshold on (is the validation month empty?)")
    order = np.argsort(-proba, kind="stable")
    scores = proba[order]
    positives = y_true[order].astype(float)
    # Predicting the top k rows as delayed: TP and FP counts for every k.
    tp = np.concatenate([[0.0], np.cumsum(positives)])
    fp = np.concatenate([[0.0], np.cumsum(1.0 - positives)])
    fn = tp[-1] - tp
    # Only cut between distinct scores.
    distinct = np.concatenate([[True], scores[1:] != scores[:-1], [True]])
    cost = (costs.false_positive * fp + costs.false_negative * fn) / max(len(proba), 1)
    cost = np.where(distinct, cost, np.inf)
    k = int(np.argmin(cost))
    threshold = float(np.nextafter(scores[0], np.inf)) if k == 0 else float(scores[k - 1])
    return threshold, float(cost[k])


def test_scores(y_true: np.ndarray, proba: np.ndarray, threshold: float, costs: Costs) -> dict[str, float]:
    """The test month's metrics at a threshold chosen elsewhere: :func:`score`, the cost per flight at that
    threshold, and the best cost any threshold could have reached on these rows."""
    predicted = proba >= threshold
    wrong = costs.false_positive * np.sum(predicted & (y_true == 0)) + costs.false_negative * np.sum(
        ~predicted & (y_true == 1)
    )
    _, best = choose_threshold(y_true, proba, costs)
    return score(y_true, proba, threshold) | {
        "expected_cost": float(wrong / max(len(y_true), 1)),
        "best_possible_cost": best,
    }


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free and thresholded metrics; AUCs are NaN-free only when both classes occur."""
    predicted = (proba >= threshold).astype(int)
    both = len(np.unique(y_true)) == 2
    return {
        "rows": float(len(y_true)),
        "positive_rate": float(np.mean(y_true)) if len(y_true) else 0.0,
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_true, proba)) if both else float("nan"),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, proba)),
    }


def rounded(metrics: dict[str, float], digits: int = 6) -> dict[str, float | None]:
    """Metrics fit for JSON: rounded, NaN as null."""
    return {k: (None if np.isnan(v) else round(v, digits)) for k, v in metrics.items()}


def slice_scores(
    frame: pd.DataFrame, y_true: np.ndarray, proba: np.ndarray, threshold: float, by: Iterable[str]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{column: {value: metrics}}`` for each slicing column, values in sorted order."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for column in by:
        values = frame[column].astype("str").to_numpy()
        out[column] = {
            str(value): rounded(score(y_true[values == value], proba[values == value], threshold))
            for value in sorted(set(values))
        }
    return out


def _thin(points: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    if len(points) <= limit:
        return points
    keep = np.unique(np.linspace(0, len(points) - 1, limit).round().astype(int))
    return [points[i] for i in keep]


def curves(y_true: np.ndarray, proba: np.ndarray, points: int) -> dict[str, list[dict[str, Any]]]:
    """ROC, precision-recall and calibration curves as DVC plot rows, thinned to ``points`` rows."""
    fpr, tpr, roc_thr = roc_curve(y_true, proba)
    precision, recall, pr_thr = precision_recall_curve(y_true, proba)
    prob_true, prob_pred = calibration_curve(y_true, proba, n_bins=10, strategy="quantile")

    def r(x: float) -> float:
        return round(float(x), 6)

    roc = [{"fpr": r(a), "tpr": r(b), "threshold": r(min(t, 1.0))} for a, b, t in zip(fpr, tpr, roc_thr, strict=True)]
    pr = [
        {"recall": r(a), "precision": r(b), "threshold": r(t)}
        for a, b, t in zip(recall[:-1], precision[:-1], pr_thr, strict=True)
    ]
    calibration = [{"predicted": r(a), "observed": r(b)} for a, b in zip(prob_pred, prob_true, strict=True)]
    return {"roc": _thin(roc, points), "precision_recall": _thin(pr, points), "calibration": calibration}


def confusion_rows(y_true: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> list[dict[str, str]]:
    """One row per example, as DVC's confusion template expects; ``classes`` names label 0 and label 1."""
    names = np.array(list(classes))
    return [{"actual": a, "predicted": p} for a, p in zip(names[y_true], names[predicted], strict=True)]
