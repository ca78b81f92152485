from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightdelay.core import gate
from flightdelay.core.behaviour import Behaviour, measure
from flightdelay.interface import Invariant
from flightdelay.settings import Gate, SliceRules

GATE = Gate(minimum={"test.roc_auc": 0.70}, max_regression={"test.roc_auc": 0.01, "test.log_loss": 0.01})
BASE = {"test.roc_auc": 0.72, "test.log_loss": 0.43, "test.rows": 100}


def test_direction_of_each_kind_of_metric() -> None:
    assert gate.direction("test.roc_auc") == 1
    assert gate.direction("valid.log_loss") == -1
    assert gate.direction("threshold") == 0


def test_passes_within_the_limits() -> None:
    verdict = gate.judge(GATE, {"test.roc_auc": 0.715, "test.log_loss": 0.435}, BASE)
    assert verdict.passed
    assert verdict.checked == 3


def test_below_minimum_names_metric_value_and_floor() -> None:
    verdict = gate.judge(GATE, {"test.roc_auc": 0.6812, "test.log_loss": 0.43}, None)
    assert verdict.failures == ["test.roc_auc = 0.6812 is below the minimum 0.7"]


def test_regression_in_either_direction_of_better() -> None:
    verdict = gate.judge(GATE, {"test.roc_auc": 0.705, "test.log_loss": 0.45}, BASE)
    assert verdict.failures == [
        "test.log_loss got worse by 0.0200 (0.4300 -> 0.4500), more than the allowed 0.01",
        "test.roc_auc got worse by 0.0150 (0.7200 -> 0.7050), more than the allowed 0.01",
    ]


def test_improvement_is_never_a_regression() -> None:
    assert gate.judge(GATE, {"test.roc_auc": 0.80, "test.log_loss": 0.30}, BASE).passed


def test_missing_metric_fails() -> None:
    verdict = gate.judge(GATE, {}, BASE)
    assert "test.roc_auc is missing from the PR's metrics (minimum 0.7)" in verdict.failures


def test_no_base_skips_regressions() -> None:
    verdict = gate.judge(GATE, {"test.roc_auc": 0.71}, None)
    assert verdict.passed
    assert verdict.checked == 1


def test_a_rule_without_a_direction_fails_loudly() -> None:
    typo = Gate(minimum={}, max_regression={"test.rocauc": 0.01})
    verdict = gate.judge(typo, {"test.rocauc": 0.7}, {"test.rocauc": 0.7})
    assert verdict.failures == ["gate.max_regression.test.rocauc: no known direction (better is higher or lower?)"]


def test_nan_is_not_called_missing() -> None:
    verdict = gate.judge(GATE, {"test.roc_auc": float("nan"), "test.log_loss": 0.43}, None)
    assert verdict.failures == ["test.roc_auc is not a number in the PR's metrics (minimum 0.7)"]


SLICES = Gate(
    minimum={},
    max_regression={},
    slices=SliceRules(min_rows=300, minimum={"roc_auc": 0.60, "log_loss": 0.50}, max_gap={"roc_auc": 0.10}),
)


def scores(roc_auc: float | None, rows: int, log_loss: float = 0.45) -> dict[str, float | None]:
    return {"roc_auc": roc_auc, "log_loss": log_loss, "rows": float(rows)}


def test_every_slice_with_enough_rows_meets_the_floors_and_the_gap() -> None:
    slices = {"carrier": {"AA": scores(0.70, 2000), "VX": scores(0.65, 400), "HA": scores(0.20, 21)}}
    verdict = gate.judge(SLICES, {}, None, slices=slices)
    assert verdict.passed  # HA's 21 rows are too few to judge
    assert verdict.checked == 3  # two floors and one gap, for the one dimension


def test_a_slice_below_a_floor_is_named_in_the_direction_of_its_metric() -> None:
    slices = {"origin": {"EWR": scores(0.66, 9000), "JFK": scores(0.58, 8000, log_loss=0.52)}}
    assert gate.judge(SLICES, {}, None, slices=slices).failures == [
        "slice origin JFK: log_loss = 0.5200 (8,000 rows) is above the limit 0.5 for every origin with at least 300 "
        "test rows",
        "slice origin JFK: roc_auc = 0.5800 (8,000 rows) is below the limit 0.6 for every origin with at least 300 "
        "test rows",
    ]


def test_a_gap_beyond_the_rule_names_the_worst_and_the_best_slice() -> None:
    slices = {"carrier": {"EV": scores(0.76, 4900), "VX": scores(0.62, 472), "UA": scores(0.66, 5000)}}
    assert gate.judge(SLICES, {}, None, slices=slices).failures == [
        "slice carrier VX: roc_auc = 0.6200, 0.1400 from the best carrier (EV, 0.7600), more than the allowed gap "
        "0.1 for every carrier with at least 300 test rows"
    ]


def test_slice_rules_without_slices_fail_and_without_a_pipeline_are_not_judged() -> None:
    assert gate.judge(SLICES, {}, None, slices={}).failures == [
        "the slice rules (gate.slices) have no slice metrics to judge: evaluate wrote none"
    ]
    assert gate.judge(SLICES, {}, None, slices=None).passed


def test_an_invariant_the_model_breaks_fails_the_gate_and_says_how() -> None:
    later = Invariant("a later departure", before={"hour": 7}, after={"hour": 19})
    kept = Behaviour(later, rows=2000, mean_rise=0.21, share_lower=0.004)
    broken = Behaviour(later, rows=2000, mean_rise=0.01, share_lower=0.2)
    assert gate.judge(SLICES, {}, None, behaviours=[kept]).passed
    assert gate.judge(SLICES, {}, None, behaviours=[broken]).failures == [
        "robustness: a later departure raised the probability by +0.0100 on average over 2,000 test rows, less than "
        "the required +0.05",
        "robustness: a later departure lowered the probability of 20.0% of 2,000 test rows by more than 0.01, more "
        "than the allowed 5%",
    ]


def test_the_invariants_are_measured_on_seeded_real_rows_and_unknown_columns_are_named() -> None:
    rows = pd.DataFrame({"hour": np.arange(100) % 24, "x": np.linspace(0, 1, 100)})

    def proba(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["hour"] / 24 * 0.5 + frame["x"] * 0.1)

    (measured,) = measure(proba, rows, [Invariant("later", before={"hour": 7}, after={"hour": 19})], rows=50)
    assert measured.rows == 50 and measured.mean_rise == pytest.approx(0.25) and measured.share_lower == 0
    with pytest.raises(ValueError, match=r"the invariant 'storm' sets columns the joined table lacks: \['precip'\]"):
        measure(proba, rows, [Invariant("storm", before={"precip": 0.0}, after={"precip": 1.0})])


def test_regressions_within_noise_pass_only_when_the_gate_asks_for_significance() -> None:
    from flightdelay.core.significance import Interval

    noisy = {"test.roc_auc": Interval(-0.015, -0.03, 0.001, 0.95)}
    real = {"test.roc_auc": Interval(-0.015, -0.025, -0.005, 0.95)}
    pr = {"test.roc_auc": 0.705, "test.log_loss": 0.43}
    assert not gate.judge(GATE, pr, BASE, significance=noisy).passed  # every regression counts by default
    lenient = GATE.model_copy(update={"significant_regressions_only": True})
    assert gate.judge(lenient, pr, BASE, significance=noisy).passed
    assert gate.judge(lenient, pr, BASE, significance=real).failures == [
        "test.roc_auc got worse by 0.0150 (0.7200 -> 0.7050), more than the allowed 0.01"
    ]
    assert not gate.judge(lenient, pr, BASE).passed  # nothing measured: the rule as written
