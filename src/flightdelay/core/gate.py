"""The quality gate: absolute minimums and the largest allowed regression against the base."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from flightdelay.settings import Gate

# +1: higher is better, -1: lower is better. Judged on the last part of a flat name (test.roc_auc).
DIRECTION = {
    "accuracy": 1,
    "precision": 1,
    "recall": 1,
    "f1": 1,
    "roc_auc": 1,
    "pr_auc": 1,
    "log_loss": -1,
    "brier": -1,
    "expected_cost": -1,
    "best_possible_cost": -1,
}


def direction(metric: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when neither (counts, thresholds)."""
    return DIRECTION.get(metric.rsplit(".", 1)[-1], 0)


@dataclass(frozen=True)
class Verdict:
    failures: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _absent(metrics: Mapping[str, object], metric: str) -> str:
    return "missing from" if metric not in metrics else "not a number in"


def judge(gate: Gate, pr: Mapping[str, object], base: Mapping[str, object] | None) -> Verdict:
    """Every gate rule applied to the PR's flat metrics; ``base`` None skips the regression rules."""
    failures: list[str] = []
    checked = 0
    for metric, floor in sorted(gate.minimum.items()):
        checked += 1
        value = _number(pr.get(metric))
        if value is None:
            failures.append(f"{metric} is {_absent(pr, metric)} the PR's metrics (minimum {floor:g})")
        elif value < floor:
            failures.append(f"{metric} = {value:.4f} is below the minimum {floor:g}")
    if base is None:
        return Verdict(failures, checked)
    for metric, allowed in sorted(gate.max_regression.items()):
        sign = direction(metric)
        if sign == 0:
            failures.append(f"gate.max_regression.{metric}: no known direction (better is higher or lower?)")
            continue
        before, after = _number(base.get(metric)), _number(pr.get(metric))
        if before is None:
            continue  # new metric: nothing to regress from
        checked += 1
        if after is None:
            failures.append(f"{metric} is {_absent(pr, metric)} the PR's metrics (base {before:.4f})")
            continue
        worse_by = (before - after) * sign
        if worse_by > allowed + 1e-12:
            failures.append(
                f"{metric} got worse by {worse_by:.4f} ({before:.4f} -> {after:.4f}), more than the allowed {allowed:g}"
            )
    return Verdict(failures, checked)
