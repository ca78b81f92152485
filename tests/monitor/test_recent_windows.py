"""Retraining waits for k of n: real months judged one after another, each verdict recorded, the digest saying why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightdelay import monitor, settings
from flightdelay.core.windows import History, Record
from flightdelay.io import drift_report
from tests.conftest import ROOT

NOW = pd.Timestamp("2026-11-30T06:17:00Z")


def sensitive(params: settings.Params, k: int = 2, n: int = 3) -> settings.Params:
    """Any drifted feature counts: every month after winter is flagged, so the test is about the counting."""
    rules = params.monitor.model_copy(update={"drift_share": 0.01, "retrain_k": k, "retrain_n": n})
    return params.model_copy(update={"monitor": rules})


def test_the_first_flagged_month_waits_and_the_second_recommends_retraining(
    params: settings.Params, january: monitor.Window, february: monitor.Window, baseline: dict[str, object]
) -> None:
    rules = sensitive(params)
    features = pd.concat([january.features, february.features], ignore_index=True)
    winter = monitor.Window("winter", features, np.concatenate([january.proba, february.proba]))
    judged = History()
    verdicts = []
    for month in ("2013-06", "2013-07"):
        window = monitor.month_window(ROOT, rules, month)
        result = monitor.compare(winter, window, rules, baseline)
        assert result.flagged, result.reasons
        judged = monitor.judge(result, window, judged, model="m1", rules=rules.monitor, now=NOW)
        verdicts.append(result)
    waiting, due = verdicts
    assert not waiting.retrain and due.retrain
    assert waiting.headline == "drift or decay, not yet enough windows to retrain"
    (retrain, *_) = waiting.verdicts()
    assert retrain.verdict == "not yet" and not retrain.flagged
    assert "1 of the one window so far (of 3) judged against this model flagged (2013-06: data drift" in retrain.line()
    assert retrain.rule.startswith(
        "retrain when the data drifts, the predictions drift or the model decays in at least 2 of the last 3 "
        "windows judged against the current model (monitor.retrain_k, monitor.retrain_n; "
    )
    assert due.headline == "retraining recommended"
    assert "2 of the last 2 windows so far (of 3)" in due.verdicts()[0].observed
    assert [r.window for r in judged.records] == ["2013-06", "2013-07"]
    assert judged.records[1].start == "2013-07-01T00:00:00Z" and judged.records[1].end == "2013-08-01T00:00:00Z"
    digest = drift_report.digest(waiting)
    assert "## Model monitor: 🟡 drift or decay, not yet enough windows to retrain" in digest
    assert due.summary()["recent_windows"]["flagged"] == 2


def test_a_window_that_fails_the_data_checks_is_not_recorded(
    params: settings.Params, january: monitor.Window, baseline: dict[str, object]
) -> None:
    broken = monitor.Window(
        "flights of 2013-02",
        january.features,
        january.proba,
        quality={"status": "failed", "errors": [{"column": "dep_time"}], "warnings": []},
        span=(pd.Timestamp("2013-02-01", tz="UTC"), pd.Timestamp("2013-03-01", tz="UTC")),
    )
    result = monitor.compare(january, broken, sensitive(params), baseline)
    judged = monitor.judge(result, broken, History(), model="m1", rules=params.monitor, now=NOW)
    assert judged == History()
    assert result.tally is not None and result.tally.last == ()
    assert result.headline == "the window fails the data checks"


def test_a_prediction_log_is_keyed_by_its_span_and_a_month_by_its_name() -> None:
    start, end = pd.Timestamp("2013-11-03T08:00:00Z"), pd.Timestamp("2013-11-10T07:59:59Z")
    log = monitor.Window("prediction log predictions.jsonl", pd.DataFrame(), np.array([]))
    with pytest.raises(monitor.MonitorError, match="has no time span"):
        _ = log.key
    log.span = (start, end)
    assert log.key == "2013-11-03T08:00:00Z/2013-11-10T07:59:59Z"
    log.span = (pd.Timestamp("2013-11-01", tz="UTC"), pd.Timestamp("2013-12-01", tz="UTC"))
    assert log.key == "2013-11"


def test_next_is_the_first_later_month_without_a_verdict_on_this_model(params: settings.Params) -> None:
    data_latest = max(monitor.PROBLEM.periods_present(ROOT / params.paths.raw))
    later = [p for p in monitor.PROBLEM.sample_periods() if p > data_latest]
    labels = [f"{p // 100}-{p % 100:02d}" for p in later]
    assert monitor.watch_month(ROOT, params, History(), "m1") == labels[0]
    judged = History()
    for month in labels:
        record = _record(month, model="m1")
        judged = judged.with_record(record)
        expected = labels[labels.index(month) + 1] if month != labels[-1] else labels[-1]
        assert monitor.watch_month(ROOT, params, judged, "m1") == expected
    assert monitor.watch_month(ROOT, params, judged, "m2") == labels[0]  # a new model: watched from the start


def _record(month: str, *, model: str) -> Record:
    start = pd.Timestamp(f"{month}-01", tz="UTC")
    end = start + pd.offsets.MonthBegin(1)
    return Record(
        window=month,
        name=f"flights of {month}",
        start=f"{start:%Y-%m-%dT%H:%M:%SZ}",
        end=f"{end:%Y-%m-%dT%H:%M:%SZ}",
        model=model,
        flagged=True,
        causes=("data drift",),
        recorded="2026-11-30T06:17:00Z",
    )
