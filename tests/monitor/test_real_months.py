"""The monitor on the real sample: seasons drift, a month does not drift from itself, logs and late labels join."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flightdelay import monitor, serving, settings
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet
from flightdelay.problem import schemas
from tests.conftest import ROOT

RNG = np.random.default_rng(13)


def _concat(name: str, windows: list[monitor.Window]) -> monitor.Window:
    return monitor.Window(
        name,
        pd.concat([w.features for w in windows], ignore_index=True),
        np.concatenate([w.proba for w in windows]),
    )


def _part(window: monitor.Window, rows: np.ndarray) -> monitor.Window:
    labels = window.labels.iloc[rows].reset_index(drop=True) if window.labels is not None else None
    return monitor.Window(window.name, window.features.iloc[rows].reset_index(drop=True), window.proba[rows], labels)


def test_a_summer_month_drifts_from_winter(
    params: settings.Params, january: monitor.Window, february: monitor.Window, baseline: dict[str, object]
) -> None:
    winter = _concat("winter", [january, february])
    july = monitor.month_window(ROOT, params, "2013-07")
    result = monitor.compare(winter, july, params, baseline)
    drifted = {d.column for d in result.features if d.drifted}
    assert {"temp", "dewp"} <= drifted
    assert result.data_drift and result.retrain
    assert result.quality["status"] == "passed"
    assert result.reasons[0].startswith("Data drift: yes — ")
    assert "the rule: the data drifts when at least 25% of the model's features drift" in result.reasons[0]
    assert "That reaches the" in result.share_rule() and result.share_rule().endswith("so data drift: yes.")


def test_a_month_does_not_drift_from_itself(
    params: settings.Params, january: monitor.Window, baseline: dict[str, object]
) -> None:
    order = RNG.permutation(len(january.features))
    half = len(order) // 2
    result = monitor.compare(_part(january, order[:half]), _part(january, order[half:]), params, baseline)
    assert [d.column for d in result.features if d.drifted] == []
    assert not result.prediction_drift
    assert not result.retrain, result.reasons


def test_a_prediction_log_with_late_labels_gives_live_metrics(
    params: settings.Params, baseline: dict[str, object], tmp_path: Path
) -> None:
    flights = read_parquet(ROOT / params.paths.joined)
    october = flights[flights["month"] == 10].sample(3000, random_state=3)
    requests = [
        {
            k: (None if isinstance(v, float) and np.isnan(v) else (v.item() if hasattr(v, "item") else v))
            for k, v in r.items()
        }
        for r in october[list(schemas.REQUEST_COLUMNS)].to_dict(orient="records")
    ]
    model = dvc.verify_output(ROOT, "train", params.paths.model)
    serving.write_bundle(tmp_path / "bundle", model, ROOT / params.paths.raw, ROOT / params.paths.metrics, {})
    proba, _ = serving.Predictor.load(tmp_path / "bundle").predict(requests)
    ids = [uuid.uuid4().hex for _ in requests]
    log = tmp_path / "predictions.jsonl"
    log.write_text(
        "".join(
            json.dumps(
                {"time": 1381000000 + i * 60, "request_id": rid, "input": req, "output": {"delay_probability": p}}
            )
            + "\n"
            for i, (rid, req, p) in enumerate(zip(ids, requests, proba, strict=True))
        )
    )
    # Labels arrive for 2,400 of the 3,000, in another order; the rest are still in the air.
    arrived = pd.DataFrame({"request_id": ids, "arr_delay": october["arr_delay"].to_numpy()}).sample(
        2400, random_state=4
    )
    labels = tmp_path / "labels.csv"
    arrived.to_csv(labels, index=False)
    result, _, window = monitor.run(ROOT, params, log=log, labels=labels)
    assert window.labels is not None and int(window.labels.notna().sum()) == 2400
    performance = result.performance
    assert performance is not None
    assert (performance["labelled"], performance["unlabelled"]) == (2400, 600)
    expected = (arrived["arr_delay"].isna() | (arrived["arr_delay"] >= params.label.delay_minutes)).mean()
    assert performance["positive_rate"] == pytest.approx(expected)
    assert abs(performance["roc_auc"] - performance["baseline_roc_auc"]) < 0.06  # the test month, sampled
    assert not result.decay


def test_the_command_writes_a_self_contained_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flightdelay", "monitor", "--month", "2013-11", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "## Model monitor:" in done.stdout
    page = (tmp_path / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page and "<script" not in page
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["window"] == "flights of 2013-11" and summary["rows"] > 25_000
    assert {"retrain", "features", "prediction", "quality", "performance"} <= set(summary)
    assert (tmp_path / "digest.md").read_text().startswith("<!-- flightdelay-monitor -->")
    # The printed lines: each verdict with its numbers and rule, as summary.json records them.
    checks = [v["check"] for v in summary["verdicts"]]
    assert checks == ["Retraining", "Data drift", "Prediction drift", "Data quality", "Decay"]
    for verdict in summary["verdicts"]:
        assert f"- **{verdict['check']}: {verdict['verdict']}** — {verdict['observed']}; the rule: " in done.stdout
    drifted = sum(f["drifted"] for f in summary["features"])
    assert f"{drifted} of {len(summary['features'])} features drifted" in summary["verdicts"][1]["observed"]
    assert "<pre" not in page


def test_bad_windows_are_named(params: settings.Params) -> None:
    with pytest.raises(monitor.MonitorError, match="expected a month as YYYY-MM"):
        monitor.run(ROOT, params, month="November")
    with pytest.raises(monitor.MonitorError, match="the sample holds the months 2013-01 to 2013-12"):
        monitor.run(ROOT, params, month="2014-01")
    with pytest.raises(monitor.MonitorError, match="exactly one window"):
        monitor.run(ROOT, params)


@pytest.mark.slow
def test_a_month_that_fails_the_data_checks_stops_the_command_and_proposes_nothing(tmp_path: Path) -> None:
    """A broken window is loud, and never becomes a retraining PR: fix the data first."""
    from tests.e2e.conftest import clone_template, environment

    project = clone_template(tmp_path / "repo", environment(tmp_path))
    project.dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))
    project.dvc("checkout")
    airlines = project.path / "data/raw/airlines.csv"
    airlines.write_text("".join(line for line in airlines.open() if not line.startswith("UA,")))
    done = project.cli("monitor", "--month", "2013-11", "--propose", "--out", str(tmp_path / "out"), check=False)
    assert done.returncode == 1, done.stderr
    assert "the window fails the data checks" in done.stderr
    assert "nothing proposed" in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["retrain"] is False
    retraining = summary["verdicts"][0]
    assert (retraining["check"], retraining["verdict"]) == ("Retraining", "withheld")
    assert "prediction drift" in retraining["observed"]  # November drifts: it would have been proposed
    assert "## Model monitor: " in done.stdout and "fails the data checks" in done.stdout
