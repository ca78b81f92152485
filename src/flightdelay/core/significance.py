"""Is a change of a metric real? A paired bootstrap over the very same test rows, scored by base and PR.

Each replicate resamples the rows (with replacement, seeded) and scores both models' probabilities on that
resample; the interval of the differences says whether the change is beyond the noise of which rows
happened to be in the test month. A resample is a vector of counts per row, so each model's rows are
sorted once and every replicate costs a few passes over arrays (a thousand replicates of 30,000 rows
take seconds, not the minutes that re-scoring with scikit-learn would).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")  # threshold-free: what the test rows alone decide
_EPS = 1e-15  # probabilities are clipped as scikit-learn's log_loss clips them
_CHUNK = 50  # replicates scored at once: 50 x 30,000 rows of float64 weights is 12 MB


@dataclass(frozen=True)
class Interval:
    """PR minus base on the same rows, and the bootstrap interval of that difference."""

    change: float
    low: float
    high: float
    level: float

    @property
    def significant(self) -> bool:
        """The interval leaves out zero: the sign of the change is not an accident of the rows."""
        return self.low > 0 or self.high < 0

    def describe(self) -> str:
        verdict = "significant" if self.significant else "within noise"
        return f"{verdict} ({self.level:.0%} CI {self.low:+.4f} to {self.high:+.4f})"


class _Scored:
    """One model's probabilities on the rows, sorted once, scored under any vector of row weights."""

    def __init__(self, y: np.ndarray, proba: np.ndarray) -> None:
        self.order = np.argsort(-proba, kind="stable")  # highest score first
        ranked = proba[self.order]
        self.y = y[self.order].astype(float)
        self.starts = np.flatnonzero(np.concatenate([[True], ranked[1:] != ranked[:-1]]))  # tied scores: one group
        clipped = np.clip(proba, _EPS, 1 - _EPS)
        self.loss = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
        self.squared = (proba - y) ** 2

    def scores(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric under each row of ``weights`` (replicates x rows)."""
        w = weights[:, self.order]
        positive = np.add.reduceat(w * self.y, self.starts, axis=1)
        negative = np.add.reduceat(w * (1 - self.y), self.starts, axis=1)
        tp, fp = np.cumsum(positive, axis=1), np.cumsum(negative, axis=1)
        total_positive, total_negative = tp[:, -1:], fp[:, -1:]
        # ROC AUC: each positive against the negatives scored below it, half for those tied with it.
        below = total_negative - fp
        roc_auc = np.sum(positive * (below + negative / 2), axis=1) / (total_positive * total_negative)[:, 0]
        # Average precision as scikit-learn computes it: precision at each threshold, weighted by recall gained
        # (a threshold no resampled row sits at gains nothing).
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        pr_auc = np.sum(positive * precision, axis=1) / total_positive[:, 0]
        total = weights.sum(axis=1)
        return {
            "roc_auc": roc_auc,
            "pr_auc": pr_auc,
            "log_loss": weights @ self.loss / total,
            "brier": weights @ self.squared / total,
        }


def paired_bootstrap(
    y: np.ndarray,
    base: np.ndarray,
    pr: np.ndarray,
    metrics: Sequence[str] = METRICS,
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """For each metric, PR minus base on ``y`` and its percentile interval over ``samples`` paired resamples."""
    y = np.asarray(y)
    if not (len(y) == len(base) == len(pr)) or len(y) == 0:
        raise ValueError(f"the paired bootstrap needs the same rows on both sides: {len(y)}, {len(base)}, {len(pr)}")
    if len(np.unique(y)) < 2:
        raise ValueError("the test rows hold one class only: there is no AUC to compare")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"no bootstrap for {unknown}: it knows {list(METRICS)}")
    sides = _Scored(y, np.asarray(base, dtype=float)), _Scored(y, np.asarray(pr, dtype=float))
    rng = np.random.default_rng(seed)
    found: dict[str, list[np.ndarray]] = {metric: [] for metric in metrics}
    for first in range(0, samples, _CHUNK):
        count = min(_CHUNK, samples - first)
        drawn = rng.integers(0, len(y), (count, len(y)))
        weights = np.stack([np.bincount(rows, minlength=len(y)) for rows in drawn]).astype(float)
        positives = weights @ y
        weights = weights[(positives > 0) & (positives < len(y))]  # a resample of one class has no AUC
        before, after = (side.scores(weights) for side in sides)
        for metric in metrics:
            found[metric].append(after[metric] - before[metric])
    differences = {metric: np.concatenate(parts) for metric, parts in found.items()}
    before, after = (side.scores(np.ones((1, len(y)))) for side in sides)
    tail = (1 - level) / 2 * 100
    return {
        metric: Interval(
            change=float(after[metric][0] - before[metric][0]),
            low=float(np.percentile(found, tail)),
            high=float(np.percentile(found, 100 - tail)),
            level=level,
        )
        for metric, found in differences.items()
    }
