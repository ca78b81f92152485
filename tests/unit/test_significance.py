"""The paired bootstrap: scikit-learn's own metrics at every resample, seeded, and a verdict that can go either way."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from flightdelay.core.significance import _Scored, paired_bootstrap

ROWS = 5000


def rows(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a model's probabilities, rounded so that scores tie as a real model's do."""
    rng = np.random.default_rng(seed)
    y = (rng.random(ROWS) < 0.2).astype(int)
    return y, np.round(np.clip(0.2 + 0.15 * (y - 0.2) + rng.normal(0, 0.1, ROWS), 0.01, 0.99), 3)


def test_the_scores_under_resampling_weights_are_scikit_learns() -> None:
    y, proba = rows()
    weights = np.bincount(np.random.default_rng(2).integers(0, ROWS, ROWS), minlength=ROWS).astype(float)
    scored = _Scored(y, proba).scores(np.stack([np.ones(ROWS), weights]))
    for index, w in enumerate((None, weights)):
        assert scored["roc_auc"][index] == pytest.approx(roc_auc_score(y, proba, sample_weight=w), abs=1e-12)
        assert scored["pr_auc"][index] == pytest.approx(average_precision_score(y, proba, sample_weight=w), abs=1e-12)
        assert scored["log_loss"][index] == pytest.approx(log_loss(y, proba, sample_weight=w), abs=1e-12)
        assert scored["brier"][index] == pytest.approx(brier_score_loss(y, proba, sample_weight=w), abs=1e-12)


def test_a_tiny_change_is_within_noise_and_a_real_one_is_significant() -> None:
    y, base = rows()
    noise = np.clip(base + np.random.default_rng(3).normal(0, 0.002, ROWS), 0.01, 0.99)
    within = paired_bootstrap(y, base, noise, samples=300)
    assert not within["roc_auc"].significant and within["roc_auc"].low < 0 < within["roc_auc"].high
    assert within["roc_auc"].describe().startswith("within noise (95% CI -0.")
    better = np.clip(base + 0.1 * (y - 0.2), 0.01, 0.99)  # knows more about the label
    found = paired_bootstrap(y, base, better, samples=300)
    assert found["roc_auc"].significant and found["roc_auc"].low > 0
    assert found["log_loss"].significant and found["log_loss"].high < 0
    assert found["roc_auc"].change == pytest.approx(roc_auc_score(y, better) - roc_auc_score(y, base), abs=1e-12)


def test_the_interval_is_seeded_and_the_same_model_changes_nothing() -> None:
    y, base = rows()
    other = np.clip(base + np.random.default_rng(4).normal(0, 0.01, ROWS), 0.01, 0.99)
    assert paired_bootstrap(y, base, other, samples=200) == paired_bootstrap(y, base, other, samples=200)
    same = paired_bootstrap(y, base, base, samples=200)
    assert all(i.change == 0 and i.low == 0 and i.high == 0 and not i.significant for i in same.values())


def test_rows_that_cannot_be_compared_are_named() -> None:
    y, base = rows()
    with pytest.raises(ValueError, match="the same rows on both sides: 5000, 5000, 10"):
        paired_bootstrap(y, base, base[:10])
    with pytest.raises(ValueError, match="one class only"):
        paired_bootstrap(np.zeros(ROWS), base, base)
    with pytest.raises(ValueError, match=r"no bootstrap for \['accuracy'\]"):
        paired_bootstrap(y, base, base, ["accuracy"])
