from __future__ import annotations

from flightdelay.core import gate
from flightdelay.settings import Gate

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
