"""Drift statistics on known cases, the reasons they give, and the join of labels that arrive after the predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flightdelay.core.drift import column_drift, compared, frame_drift, numeric_psi
from flightdelay.monitor import MonitorError, read_log

RNG = np.random.default_rng(7)


def test_identical_data_does_not_drift() -> None:
    values = pd.Series(RNG.normal(size=20_000), name="x")
    drift = column_drift(values, values.copy(), psi_threshold=0.2, p_value=0.01)
    assert drift.psi == pytest.approx(0.0, abs=1e-12)
    assert drift.p_value == pytest.approx(1.0)
    assert not drift.drifted


def test_two_samples_of_one_distribution_do_not_drift() -> None:
    a, b = (pd.Series(RNG.normal(size=20_000), name="x") for _ in range(2))
    drift = column_drift(a, b, psi_threshold=0.2, p_value=0.01)
    assert drift.psi < 0.01
    assert not drift.drifted


def test_a_shifted_distribution_drifts() -> None:
    a = pd.Series(RNG.normal(size=20_000), name="x")
    b = pd.Series(RNG.normal(loc=1.0, size=20_000), name="x")
    drift = column_drift(a, b, psi_threshold=0.2, p_value=0.01)
    assert drift.psi > 0.5  # a one-sd shift is a major one
    assert drift.test == "kolmogorov-smirnov" and drift.p_value < 1e-10
    assert drift.drifted


def test_a_small_shift_in_a_large_sample_is_significant_but_not_drift() -> None:
    a = pd.Series(RNG.normal(size=200_000), name="x")
    b = pd.Series(RNG.normal(loc=0.05, size=200_000), name="x")
    drift = column_drift(a, b, psi_threshold=0.2, p_value=0.01)
    assert drift.p_value < 0.01  # the test alone would call it
    assert not drift.drifted  # the PSI says it does not matter


def test_categories_drift_when_their_shares_move() -> None:
    a = pd.Series(RNG.choice(["UA", "B6", "EV"], p=[0.5, 0.3, 0.2], size=10_000), name="carrier")
    same = pd.Series(RNG.choice(["UA", "B6", "EV"], p=[0.5, 0.3, 0.2], size=10_000), name="carrier")
    moved = pd.Series(RNG.choice(["UA", "B6", "EV", "WN"], p=[0.1, 0.3, 0.2, 0.4], size=10_000), name="carrier")
    assert not column_drift(a, same, psi_threshold=0.2, p_value=0.01).drifted
    drift = column_drift(a, moved, psi_threshold=0.2, p_value=0.01)
    assert drift.test == "chi-square" and drift.drifted


def test_missing_values_are_reported_not_compared() -> None:
    a = pd.Series([1.0, 2.0, np.nan, 4.0] * 1000, name="x")
    b = pd.Series([np.nan] * 4000, name="x")
    drift = column_drift(a, b, psi_threshold=0.2, p_value=0.01)
    assert math.isnan(drift.psi) and not drift.drifted
    assert drift.reference_missing == pytest.approx(0.25) and drift.window_missing == 1.0


def test_psi_of_a_constant_reference_is_finite() -> None:
    assert math.isfinite(numeric_psi(np.zeros(1000), np.ones(1000)))


def test_frame_drift_orders_the_most_drifted_first() -> None:
    a = pd.DataFrame({"x": RNG.normal(size=5000), "y": RNG.normal(size=5000)})
    b = pd.DataFrame({"x": RNG.normal(size=5000), "y": RNG.normal(loc=2, size=5000)})
    drifts = frame_drift(a, b, ["x", "y"], psi_threshold=0.2, p_value=0.01)
    assert [d.column for d in drifts] == ["y", "x"]
    assert [d.drifted for d in drifts] == [True, False]


def test_each_drift_says_why_against_the_thresholds_it_was_judged_by() -> None:
    a = pd.Series(RNG.normal(size=20_000), name="x")
    shifted = column_drift(a, pd.Series(RNG.normal(loc=1.0, size=20_000), name="x"), psi_threshold=0.2, p_value=0.01)
    assert (shifted.psi_threshold, shifted.p_threshold) == (0.2, 0.01)
    assert shifted.because() == f"PSI {shifted.psi:.3g} ≥ 0.2 and p {shifted.p_value:.3g} < 0.01"
    # Significant but small: only the failing condition is the reason.
    small = column_drift(a, pd.Series(RNG.normal(loc=0.1, size=20_000), name="x"), psi_threshold=0.2, p_value=0.01)
    assert small.p_value < 0.01 and not small.drifted
    assert small.because() == f"PSI {small.psi:.3g} < 0.2"
    same = column_drift(a, a.copy(), psi_threshold=0.2, p_value=0.01)
    assert same.because() == "PSI 0 < 0.2 and p 1 ≥ 0.01"
    empty = column_drift(a, pd.Series([np.nan] * 10, name="x"), psi_threshold=0.2, p_value=0.01)
    assert empty.because() == "no values to compare"
    assert shifted.as_dict()["because"] == shifted.because()


def test_a_comparison_never_reads_the_wrong_way_round() -> None:
    assert compared(0.128, 0.1) == "0.128 ≥ 0.1"
    assert compared(0.1, 0.1) == "0.1 ≥ 0.1"
    assert compared(0.09996, 0.1) == "0.09996 < 0.1"  # not "0.1 < 0.1"
    assert compared(0.100004, 0.1) == "0.1 ≥ 0.1"  # rounded, and still true
    assert compared(2e-300, 0.01) == "2e-300 < 0.01"
    assert compared(0.05, 0.05, strict=True) == "0.05 ≤ 0.05"
    assert compared(0.0500001, 0.05, strict=True) == "0.0500001 > 0.05"
    assert compared(-0.134, 0.05, strict=True) == "-0.134 ≤ 0.05"
    assert compared(float("nan"), 0.1) == "n/a vs 0.1"


def test_a_log_with_repeated_request_ids_is_refused_and_unreadable_lines_are_skipped(tmp_path: Path) -> None:
    record = {"time": 1.0, "request_id": "a", "input": {}, "output": {"delay_probability": 0.2}}
    log = tmp_path / "predictions.jsonl"
    log.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(MonitorError, match="request ids logged more than once: a"):
        read_log(log)
    # A pod killed mid-write leaves a torn last line: skipped and counted, the window stands.
    torn = json.dumps(record | {"request_id": "b"})[:25]
    log.write_text(json.dumps(record) + "\n{not json\n" + torn)
    frame, skipped = read_log(log)
    assert list(frame["request_id"]) == ["a"] and skipped == 2
    log.write_text("{not json\n")
    with pytest.raises(MonitorError, match=r"holds no prediction records \(1 unreadable lines\)"):
        read_log(log)
    log.unlink()
    with pytest.raises(MonitorError, match="no such prediction log"):
        read_log(log)


def test_the_rotated_files_are_read_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    for name, request_id in (("predictions.jsonl.2", "a"), ("predictions.jsonl.1", "b"), ("predictions.jsonl", "c")):
        record = {"time": 1.0, "request_id": request_id, "input": {}, "output": {"delay_probability": 0.2}}
        (tmp_path / name).write_text(json.dumps(record) + "\n")
    frame, skipped = read_log(log)
    assert list(frame["request_id"]) == ["a", "b", "c"] and skipped == 0
