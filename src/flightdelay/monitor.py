"""The feedback loop's eyes: compare a window of new data with the training reference.

A window is either a month of the sample flights (``--month 2013-11``: joined, validated and
featurized exactly as the pipeline does) or the service's prediction log (``--window``), optionally
with labels that arrived later (``--labels``: request id and arrival delay). The result says, per
feature, whether it drifted; whether the predictions drifted; whether the window passes the
schema; and, with labels, whether the model decayed against its evaluation.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flightdelay import schemas, serving
from flightdelay.core import metrics as scoring
from flightdelay.core.drift import Drift, column_drift, frame_drift
from flightdelay.core.features import FEATURES, build_features, label
from flightdelay.core.join import derive_weather, join_sources
from flightdelay.io import dvc, sample
from flightdelay.io.files import read_csv, read_csvs, read_parquet
from flightdelay.settings import Params
from flightdelay.stages.validate import check


class MonitorError(ValueError):
    """The window or its labels cannot be read, or do not fit together."""


@dataclass
class Window:
    """New data as the model sees it: feature rows, predicted probabilities, labels where known."""

    name: str
    features: pd.DataFrame
    proba: np.ndarray
    labels: pd.Series | None = None  # aligned with features; NaN where no label arrived yet
    quality: dict[str, Any] = field(default_factory=dict)
    times: pd.Series | None = None  # when each prediction was made (prediction logs)


@dataclass
class Result:
    window: str
    rows: int
    features: list[Drift]
    prediction: Drift
    drift_share: float
    data_drift: bool
    prediction_drift: bool
    quality: dict[str, Any]
    performance: dict[str, Any] | None
    decay: bool
    reasons: list[str]

    @property
    def retrain(self) -> bool:
        return self.data_drift or self.prediction_drift or self.decay

    def summary(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "rows": self.rows,
            "retrain": self.retrain,
            "reasons": self.reasons,
            "data_drift": self.data_drift,
            "drift_share": round(self.drift_share, 4),
            "prediction_drift": self.prediction_drift,
            "decay": self.decay,
            "features": [_finite(d.as_dict()) for d in self.features],
            "prediction": _finite(self.prediction.as_dict()),
            "quality": self.quality,
            "performance": self.performance,
        }


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


# --- The reference and the windows -----------------------------------------------------------------


def reference(root: Path, params: Params) -> Window:
    """The training rows and the model's probabilities on them: what 'normal' looks like."""
    rows = read_parquet(root / params.paths.train)
    model = dvc.load_model(root, params.paths.model)
    proba = np.asarray(model.predict_proba(rows[list(FEATURES)])[:, 1], dtype=float)
    return Window("training reference", rows[list(FEATURES)], proba, rows["delayed"].astype(float))


def month_window(root: Path, params: Params, month: str) -> Window:
    """A month of the sample flights (``2013-11``), through the pipeline's own join, schema and features."""
    try:
        year, number = (int(part) for part in month.split("-"))
    except ValueError as exc:
        raise MonitorError(f"--month {month!r}: expected YYYY-MM, e.g. 2013-11") from exc
    if year != sample.SAMPLE_YEAR or not 1 <= number <= 12:
        raise MonitorError(f"--month {month!r}: the sample has the months of {sample.SAMPLE_YEAR} only")
    raw = root / params.paths.raw
    with tempfile.TemporaryDirectory() as tmp:
        # The month before too: the first flights' weather at prediction time is the previous evening's.
        sample.write_months(Path(tmp), [m for m in (number - 1, number) if m >= 1])
        flights = read_csvs([Path(tmp) / sample.month_file("flights", number)], schemas.RawFlights)
        weather = read_csvs(sorted((Path(tmp) / "weather").glob("*.csv")), schemas.RawWeather)
    planes = read_csv(raw / "planes.csv", schemas.RawPlanes)
    airports = read_csv(raw / "airports.csv", schemas.RawAirports)
    carriers = read_csv(raw / "airlines.csv", schemas.RawAirlines)["carrier"]
    weather, _ = derive_weather(weather)
    joined = join_sources(flights, weather, planes, airports, params.ingest.horizon_minutes)
    quality = _quality(check(joined, carriers, airports["faa"]))
    features = build_features(joined)
    model = dvc.load_model(root, params.paths.model)
    proba = np.asarray(model.predict_proba(features[list(FEATURES)])[:, 1], dtype=float)
    labels = label(joined, params.label.delay_minutes).astype(float)
    return Window(f"flights of {month}", features[list(FEATURES)], proba, labels.reset_index(drop=True), quality)


def _quality(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": report["status"],
        "rows": report["rows"],
        "errors": report["errors"],
        "warnings": [{k: v for k, v in w.items() if k != "description"} for w in report["warnings"]],
    }


def read_log(path: Path) -> tuple[pd.DataFrame, int]:
    """The service's prediction log and its rotated files (``path.N`` ... ``path.1``, ``path``), oldest first.

    One JSON record per line with time, request_id, input and output. A line that is not such a record
    (the torn last line of a pod that was killed mid-write) is skipped and counted, not fatal: the
    second value is how many were skipped.
    """
    files = serving.rotated(path)
    if not files:
        raise MonitorError(f"{path}: no such prediction log")
    records = []
    skipped = 0
    for file in files:
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records.append(
                    {
                        "time": float(record["time"]),
                        "request_id": str(record["request_id"]),
                        "input": dict(record["input"]),
                        "delay_probability": float(record["output"]["delay_probability"]),
                    }
                )
            except (ValueError, KeyError, TypeError):
                skipped += 1
    if not records:
        raise MonitorError(f"{path}: the prediction log holds no prediction records ({skipped} unreadable lines)")
    log = pd.DataFrame.from_records(records)
    repeated = log["request_id"][log["request_id"].duplicated()].unique()
    if len(repeated):
        raise MonitorError(f"{path}: request ids logged more than once: {', '.join(repeated[:5])}")
    return log, skipped


def read_labels(path: Path) -> pd.Series:
    """Labels that arrived later: ``request_id`` and ``arr_delay`` (minutes; empty = cancelled or diverted).

    CSV or JSON lines. The same id twice with the same delay counts once; with different delays it
    is an error that names the id.
    """
    if not path.is_file():
        raise MonitorError(f"{path}: no such labels file")
    try:
        frame = pd.read_json(path, lines=True) if path.suffix in (".jsonl", ".json") else pd.read_csv(path)
    except ValueError as exc:
        raise MonitorError(f"{path}: unreadable labels ({exc})") from exc
    missing = {"request_id", "arr_delay"} - set(frame.columns)
    if missing:
        raise MonitorError(f"{path}: labels need the columns request_id and arr_delay; missing {sorted(missing)}")
    frame = frame.astype({"request_id": str})
    frame["arr_delay"] = pd.to_numeric(frame["arr_delay"], errors="coerce")
    frame = frame.drop_duplicates()
    conflicting = frame["request_id"][frame["request_id"].duplicated()].unique()
    if len(conflicting):
        raise MonitorError(f"{path}: conflicting labels for request ids {', '.join(conflicting[:5])}")
    return frame.set_index("request_id")["arr_delay"]


def join_labels(request_ids: pd.Series, arrived: pd.Series, delay_minutes: int) -> pd.Series:
    """The label of each logged prediction, in log order: 1 delayed (or cancelled), 0 on time, NaN not arrived yet.

    ``arrived`` maps request id to arrival delay in minutes (NaN: cancelled or diverted, which the
    pipeline counts as delayed); ids it does not hold have no label yet.
    """
    known = request_ids.isin(arrived.index).to_numpy()
    delays = request_ids.map(arrived).to_numpy(dtype=float)
    delayed = ((delays >= delay_minutes) | np.isnan(delays)).astype(float)
    return pd.Series(np.where(known, delayed, np.nan), index=request_ids.index, name="delayed")


def log_window(root: Path, params: Params, log_path: Path, labels_path: Path | None = None) -> Window:
    """The prediction log as a window: features rebuilt from the logged inputs, the logged probabilities."""
    log, skipped = read_log(log_path)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp)
        verified = dvc.verify_output(root, "train", params.paths.model)  # unpickled by Predictor.load below
        serving.write_bundle(bundle, verified, root / params.paths.raw, root / params.paths.metrics, {})
        predictor = serving.Predictor.load(bundle)
    model = schemas.request_model()
    problems = []
    for index, request in enumerate(log["input"]):
        try:
            model.model_validate(request)
        except ValueError as exc:
            problems.append(f"record {index} ({log['request_id'][index]}): {str(exc).splitlines()[0]}")
    if problems:
        raise MonitorError(f"{log_path}: {len(problems)} logged inputs fail the request schema, e.g. {problems[0]}")
    joined = predictor.rows(list(log["input"]))
    features = build_features(joined)[list(FEATURES)]
    labels = None
    if labels_path is not None:
        labels = join_labels(log["request_id"], read_labels(labels_path), params.label.delay_minutes)
    warnings = [{"column": "(log line)", "check": "a prediction record", "rows": skipped}] if skipped else []
    quality = {"status": "passed", "rows": len(log), "skipped_lines": skipped, "errors": [], "warnings": warnings}
    times = pd.to_datetime(log["time"], unit="s", utc=True)
    return Window(
        f"prediction log {log_path.name}", features, log["delay_probability"].to_numpy(), labels, quality, times
    )


# --- The comparison ----------------------------------------------------------------------------


def compare(base: Window, window: Window, params: Params, baseline: dict[str, Any]) -> Result:
    """Data drift per feature, prediction drift, data quality and, with labels, decay against ``baseline``."""
    thresholds = params.monitor
    drifts = frame_drift(
        base.features, window.features, list(FEATURES), psi_threshold=thresholds.psi, p_value=thresholds.p_value
    )
    share = sum(d.drifted for d in drifts) / len(drifts)
    prediction = column_drift(
        pd.Series(base.proba, name="delay_probability"),
        pd.Series(window.proba, name="delay_probability"),
        psi_threshold=thresholds.prediction_psi,
        p_value=thresholds.p_value,
    )
    reasons = []
    data_drift = share >= thresholds.drift_share
    if data_drift:
        names = ", ".join(d.column for d in drifts if d.drifted)
        reasons.append(f"{share:.0%} of the features drifted (threshold {thresholds.drift_share:.0%}): {names}")
    if prediction.drifted:
        reasons.append(f"the predicted probabilities drifted: PSI {prediction.psi:.3f} >= {thresholds.prediction_psi}")
    if window.quality.get("status") == "failed":
        reasons.append(f"the window fails the schema: {len(window.quality['errors'])} hard errors")
    performance, decay = _performance(window, params, baseline)
    if decay and performance:
        reasons.append(
            f"ROC AUC fell to {performance['roc_auc']:.4f} from the evaluation's {performance['baseline_roc_auc']:.4f} "
            f"(more than {thresholds.max_auc_drop})"
        )
    return Result(
        window=window.name,
        rows=len(window.features),
        features=drifts,
        prediction=prediction,
        drift_share=share,
        data_drift=data_drift,
        prediction_drift=prediction.drifted,
        quality=window.quality,
        performance=performance,
        decay=decay,
        reasons=reasons,
    )


def _performance(window: Window, params: Params, baseline: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    if window.labels is None:
        return None, False
    known = window.labels.notna().to_numpy()
    labelled = int(known.sum())
    summary: dict[str, Any] = {"labelled": labelled, "unlabelled": int((~known).sum())}
    if labelled < params.monitor.min_labels:
        summary["note"] = f"{labelled} labels so far; live metrics need {params.monitor.min_labels}"
        return summary, False
    y = window.labels.to_numpy()[known].astype(int)
    proba = window.proba[known]
    scores = scoring.score(y, proba, float(baseline["threshold"]))
    summary |= {k: scores[k] for k in ("roc_auc", "pr_auc", "log_loss", "brier", "positive_rate")}
    summary["predicted_rate"] = float(proba.mean())
    summary["baseline_roc_auc"] = float(baseline["test"]["roc_auc"])
    summary["baseline_log_loss"] = float(baseline["test"]["log_loss"])
    drop = summary["baseline_roc_auc"] - scores["roc_auc"]
    return summary, bool(math.isfinite(drop) and drop > params.monitor.max_auc_drop)


def run(
    root: Path, params: Params, *, month: str | None = None, log: Path | None = None, labels: Path | None = None
) -> tuple[Result, Window, Window]:
    """Build the reference and the window, and compare them."""
    if (month is None) == (log is None):
        raise MonitorError("give exactly one window: --month YYYY-MM or --window <prediction log>")
    if labels is not None and log is None:
        raise MonitorError("--labels go with --window: a month of the sample carries its own labels")
    base = reference(root, params)
    window = month_window(root, params, month) if month else log_window(root, params, log, labels)  # type: ignore[arg-type]
    baseline = json.loads((root / params.paths.metrics).read_text())
    return compare(base, window, params, baseline), base, window
