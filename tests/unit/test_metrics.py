from __future__ import annotations

import numpy as np
import pytest

from flightdelay.core import metrics
from flightdelay.settings import Costs


def brute_force(y: np.ndarray, p: np.ndarray, costs: Costs) -> float:
    candidates = [*np.unique(p), np.inf]
    return min(
        (costs.false_positive * np.sum((p >= t) & (y == 0)) + costs.false_negative * np.sum((p < t) & (y == 1)))
        / len(y)
        for t in candidates
    )


@pytest.mark.parametrize("seed", range(5))
def test_threshold_minimises_cost(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    p = np.round(np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1), 2)  # rounded: ties on purpose
    costs = Costs(false_positive=1.0, false_negative=3.0)
    threshold, cost = metrics.choose_threshold(y, p, costs)
    achieved = (np.sum((p >= threshold) & (y == 0)) + 3 * np.sum((p < threshold) & (y == 1))) / len(y)
    assert cost == pytest.approx(achieved)
    assert cost == pytest.approx(brute_force(y, p, costs))


def test_free_false_positives_flag_everything() -> None:
    y, p = np.array([0, 1, 0]), np.array([0.2, 0.5, 0.9])
    threshold, cost = metrics.choose_threshold(y, p, Costs(false_positive=0.0, false_negative=1.0))
    assert cost == 0.0
    assert threshold == 0.5  # every threshold up to 0.5 costs nothing; ties go to the highest


def test_score_of_a_perfect_ranking() -> None:
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])
    scored = metrics.score(y, p, threshold=0.5)
    assert scored["roc_auc"] == 1.0
    assert scored["accuracy"] == 1.0
    assert scored["f1"] == 1.0


def test_single_class_slice_has_no_auc() -> None:
    rounded = metrics.rounded(metrics.score(np.array([1, 1]), np.array([0.4, 0.6]), 0.5))
    assert rounded["roc_auc"] is None
    assert rounded["recall"] == 0.5


def test_curves_are_thinned_and_bounded() -> None:
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 5000), rng.random(5000)
    curves = metrics.curves(y, p, points=50)
    assert len(curves["roc"]) <= 50
    assert curves["roc"][0]["fpr"] == 0.0
    assert curves["roc"][-1]["tpr"] == 1.0
    assert all(0 <= row["threshold"] <= 1 for row in curves["roc"])
    assert len(curves["calibration"]) == 10


def test_no_rows_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no rows to choose a threshold on"):
        metrics.choose_threshold(np.array([]), np.array([]), Costs(false_positive=1.0, false_negative=1.0))
