"""The quality gate: absolute minimums, the largest allowed regression against the base, the slices' floors and
gaps (fairness), and the problem's invariants (robustness)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flightdelay.core.behaviour import Behaviour
from flightdelay.core.significance import Interval
from flightdelay.settings import Gate, SliceRules

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


def judge(
    gate: Gate,
    pr: Mapping[str, object],
    base: Mapping[str, object] | None,
    *,
    slices: Mapping[str, Any] | None = None,
    behaviours: Sequence[Behaviour] = (),
    significance: Mapping[str, Interval] | None = None,
) -> Verdict:
    """Every gate rule applied to the PR's flat metrics, its ``slices`` (``reports/slices.json``) and the
    ``behaviours`` measured on its model; ``base`` None skips the regression rules, ``slices`` None the slice
    rules (the pipeline did not get as far as evaluate)."""
    failures: list[str] = []
    checked = 0
    for metric, floor in sorted(gate.minimum.items()):
        checked += 1
        value = _number(pr.get(metric))
        if value is None:
            failures.append(f"{metric} is {_absent(pr, metric)} the PR's metrics (minimum {floor:g})")
        elif value < floor:
            failures.append(f"{metric} = {value:.4f} is below the minimum {floor:g}")
    if slices is not None:
        found, count = _slice_failures(gate.slices, slices)
        failures, checked = failures + found, checked + count
    for behaviour in behaviours:
        checked += 1
        failures += behaviour.failures()
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
        interval = (significance or {}).get(metric)
        if gate.significant_regressions_only and interval is not None and not interval.significant:
            continue  # beyond the allowed change, but within the noise of the test rows
        if worse_by > allowed + 1e-12:
            failures.append(
                f"{metric} got worse by {worse_by:.4f} ({before:.4f} -> {after:.4f}), more than the allowed {allowed:g}"
            )
    return Verdict(failures, checked)


def _slice_failures(rules: SliceRules, slices: Mapping[str, Any] | None) -> tuple[list[str], int]:
    """The floor of each slice metric in every slice with enough rows, and the gap between the best and the
    worst of them in each dimension; the slice is named in each failure."""
    if not rules.minimum and not rules.max_gap:
        return [], 0
    if not slices:
        return ["the slice rules (gate.slices) have no slice metrics to judge: evaluate wrote none"], 1
    failures: list[str] = []
    checked = 0
    for dimension, groups in sorted(slices.items()):
        judged = judged_slices(rules, groups)
        enough = f"every {dimension} with at least {rules.min_rows:,} test rows"
        for metric, floor in sorted(rules.minimum.items()):
            checked += 1
            sign = direction(metric) or 1
            for group, scores in sorted(judged.items()):
                value = _number(scores.get(metric))
                if value is not None and (value - floor) * sign < 0:
                    rows = _number(scores.get("rows")) or 0
                    failures.append(
                        f"slice {dimension} {group}: {metric} = {value:.4f} ({rows:,.0f} rows) is "
                        f"{'below' if sign > 0 else 'above'} the limit {floor:g} for {enough}"
                    )
        for metric, allowed in sorted(rules.max_gap.items()):
            values = slice_values(judged, metric)
            if len(values) < 2:
                continue
            checked += 1
            worst, best = extremes(values, metric)
            gap = abs(values[best] - values[worst])
            if gap > allowed + 1e-12:
                failures.append(
                    f"slice {dimension} {worst}: {metric} = {values[worst]:.4f}, {gap:.4f} from the best {dimension} "
                    f"({best}, {values[best]:.4f}), more than the allowed gap {allowed:g} for {enough}"
                )
    return failures, checked


def judged_slices(rules: SliceRules, groups: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The slices of one dimension with enough test rows to judge (``rules.min_rows``)."""
    return {
        str(group): scores
        for group, scores in groups.items()
        if isinstance(scores, Mapping) and (_number(scores.get("rows")) or 0) >= rules.min_rows
    }


def slice_values(judged: Mapping[str, Mapping[str, Any]], metric: str) -> dict[str, float]:
    """``metric`` of each judged slice that has a number for it."""
    return {group: value for group, scores in judged.items() if (value := _number(scores.get(metric))) is not None}


def extremes(values: Mapping[str, float], metric: str) -> tuple[str, str]:
    """The worst and the best slice for ``metric`` (higher is better unless the metric says otherwise)."""
    sign = direction(metric) or 1
    return min(values, key=lambda g: values[g] * sign), max(values, key=lambda g: values[g] * sign)
