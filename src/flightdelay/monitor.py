"""The feedback loop's eyes: compare a window of new data with the training reference.

A window is either a month of the sample flights (``--month 2013-11``: joined, validated and
featurized exactly as the pipeline does) or the service's prediction log (``--window``), optionally
with labels that arrived later (``--labels``: request id and arrival delay). The result says, per
feature, whether it drifted; whether the predictions drifted; whether the window passes the
schema; and, with labels, whether the model decayed against its evaluation. Each verdict comes with
the numbers it rests on and the rule (threshold and ``params.yaml`` key) that turns them into it.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flightdelay import serving, variants
from flightdelay.core import metrics as scoring
from flightdelay.core.drift import Drift, column_drift, compared, frame_drift
from flightdelay.core.windows import History, Record, Tally
from flightdelay.interface import SampleError, parse_period, period_label
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from flightdelay.settings import Monitor, Params
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
    span: tuple[pd.Timestamp, pd.Timestamp] | None = None  # the window's first and last moment, UTC

    @property
    def key(self) -> str:
        """What identifies the window in the history of verdicts: its span, ``2013-11`` for a calendar month."""
        if self.span is None:
            raise MonitorError(f"{self.name} has no time span: it cannot be recorded")
        start, end = self.span
        if start == start.normalize() and start.day == 1 and end == start + pd.offsets.MonthBegin(1):
            return f"{start:%Y-%m}"
        return f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Verdict:
    """One verdict of the monitor, the numbers it rests on and the rule that turns them into it."""

    check: str  # "Data drift"
    verdict: str  # "yes", "no", "passed", "failed", "not measured", ...
    flagged: bool  # whether it calls for action
    observed: str  # the numbers against the threshold: "4 of 36 features drifted, 11.1% (...): fewer than ..."
    rule: str  # the rule with its value and its params key: "... at least 25% of ... (monitor.drift_share)"

    def line(self) -> str:
        """``Data drift: no — <the numbers>; the rule: <the rule>``: the verdict never without its reason."""
        return f"{self.check}: {self.verdict} — {self.observed}; the rule: {self.rule}"


@dataclass
class Result:
    """A window against the reference: the statistics, the thresholds they were judged by, the verdicts."""

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
    rules: Monitor
    shadow: variants.ShadowComparison | None = None  # when the log holds a shadow's answers
    ab: variants.ABComparison | None = None  # when the log holds an A/B test's answers
    tally: Tally | None = None  # the recent windows' verdicts (judge); None: this window judged alone

    @property
    def flagged(self) -> bool:
        """Drift or decay on a window that passes the data checks: a broken window is fixed, not trained on."""
        return (self.data_drift or self.prediction_drift or self.decay) and not self.quality_failed

    @property
    def causes(self) -> list[str]:
        found = [("data drift", self.data_drift), ("prediction drift", self.prediction_drift), ("decay", self.decay)]
        return [name for name, hit in found if hit]

    @property
    def retrain(self) -> bool:
        """This window flagged, and with it enough of the recent ones (:attr:`tally`) to be more than noise."""
        return self.flagged and (self.tally is None or self.tally.due)

    @property
    def variant_decision(self) -> bool:
        """A shadow or A/B verdict that calls for a decision: promote, keep, or look before promoting."""
        return bool((self.shadow and self.shadow.decision_due) or (self.ab and self.ab.flagged))

    @property
    def quality_failed(self) -> bool:
        return self.quality.get("status") == "failed"

    @property
    def headline(self) -> str:
        """What to do: retrain, fix the window's data, or nothing."""
        if self.retrain:
            return "retraining recommended"
        if self.quality_failed:
            return "the window fails the data checks"
        return "drift or decay, not yet enough windows to retrain" if self.flagged else "no action needed"

    @property
    def drifted(self) -> list[Drift]:
        return [d for d in self.features if d.drifted]

    @property
    def drift_needed(self) -> int:
        """How many drifted features make the data drift: the least count whose share reaches ``drift_share``."""
        total = len(self.features)
        return next((n for n in range(total + 1) if n / total >= self.rules.drift_share), total + 1)

    def feature_rule(self) -> str:
        """When one feature drifts, with the thresholds and their params keys."""
        return (
            f"A feature drifts when its PSI reaches {self.rules.psi:g} (monitor.psi) and its test "
            f"(Kolmogorov-Smirnov for numbers, chi-square for categories) rejects at p < {self.rules.p_value:g} "
            "(monitor.p_value)."
        )

    def share_rule(self) -> str:
        """Why the drifted features do or do not make the data drift: said where the feature table marks them."""
        total, count, needed = len(self.features), len(self.drifted), self.drift_needed
        relation = "That reaches" if self.data_drift else "That is fewer than"
        return (
            f"{count} of the {total} features drifted ({self.drift_share:.1%}). {relation} the {needed} of {total} "
            f"({_percent(self.rules.drift_share)}) at which the data as a whole drifts "
            f"(monitor.drift_share = {self.rules.drift_share:g}), so data drift: {_yes(self.data_drift)}."
        )

    def verdicts(self) -> list[Verdict]:
        """Every verdict with its numbers and rule: retraining first, then what it rests on."""
        rules = self.rules
        names = ", ".join(d.column for d in self.drifted)
        count, total = len(self.drifted), len(self.features)
        relation = "reaching" if self.data_drift else "fewer than"
        data = Verdict(
            "Data drift",
            _yes(self.data_drift),
            self.data_drift,
            f"{count} of {total} features drifted, {self.drift_share:.1%}{f' ({names})' if names else ''}: "
            f"{relation} the {self.drift_needed} of {total} ({_percent(rules.drift_share)}) at which the data drifts",
            f"the data drifts when at least {_percent(rules.drift_share)} of the model's features drift "
            f"(monitor.drift_share); a feature drifts when its PSI ≥ {rules.psi:g} (monitor.psi) and its "
            f"test's p < {rules.p_value:g} (monitor.p_value)",
        )
        prediction = Verdict(
            "Prediction drift",
            _yes(self.prediction_drift),
            self.prediction_drift,
            f"PSI of the predicted probabilities {compared(self.prediction.psi, rules.prediction_psi)}, "
            f"{self.prediction.test} p {compared(self.prediction.p_value, rules.p_value)}",
            f"the predictions drift when their PSI ≥ {rules.prediction_psi:g} (monitor.prediction_psi) and the "
            f"test's p < {rules.p_value:g} (monitor.p_value)",
        )
        causes = self.causes
        because = ", ".join(causes) if causes else "no data drift, prediction drift or decay"
        rule = (
            "retrain when the data drifts, the predictions drift or the model decays"
            f"{'' if self.tally is None else ' ' + self.tally.rule()}; "
            "a window that fails the data checks is reported, not trained on"
        )
        if self.quality_failed:
            because += "; the window fails the data checks: fix its data before training on it"
        elif self.tally is not None:
            because += f"; {self.tally.observed()}"
        if self.retrain:
            decision = "recommended"
        elif self.quality_failed:
            decision = "withheld" if causes else "not needed"
        else:
            decision = "not yet" if causes else "not needed"
        retrain = Verdict("Retraining", decision, self.retrain, because, rule)
        every = [retrain, data, prediction, self.quality_verdict(), self.decay_verdict()]
        if self.shadow is not None:
            shadow = self.shadow
            every.append(Verdict("Shadow", shadow.verdict, shadow.flagged, shadow.observed(), shadow.rule()))
        if self.ab is not None:
            test = self.ab
            every.append(Verdict("A/B test", test.verdict, test.flagged, test.observed(), test.rule()))
        return every

    def quality_verdict(self) -> Verdict:
        """Whether the window passes the checks made where it was read, and which rule they apply."""
        if "status" not in self.quality:
            return Verdict("Data quality", "not checked", False, "the window carries no quality report", "none")
        errors, warnings = self.quality.get("errors", []), self.quality.get("warnings", [])
        return Verdict(
            "Data quality",
            str(self.quality["status"]),
            self.quality_failed,
            f"{_count(len(errors), 'failing hard check')}, {_count(len(warnings), 'warning')} "
            "(soft checks with failing rows) "
            f"in {int(self.quality.get('rows', self.rows)):,} rows",
            str(self.quality.get("rule", "the window is checked where it is read")),
        )

    def decay_verdict(self) -> Verdict:
        """Whether the live ROC AUC fell too far below the evaluation's, or why it could not be measured."""
        rules = self.rules
        rule = (
            f"decay when the live ROC AUC is more than {rules.max_auc_drop:g} below the evaluation's "
            f"(monitor.max_auc_drop), measured once at least {rules.min_labels:,} labels have arrived "
            "(monitor.min_labels)"
        )
        perf = self.performance
        if perf is None:
            return Verdict("Decay", "not measured", False, "no labels: give --labels with the prediction log", rule)
        labelled, total = perf["labelled"], perf["labelled"] + perf["unlabelled"]
        if "roc_auc" not in perf:
            observed = f"{labelled:,} of {total:,} predictions labelled, fewer than {rules.min_labels:,}"
            return Verdict("Decay", "not measured", False, observed, rule)
        if not math.isfinite(perf["roc_auc"]):
            observed = f"the {labelled:,} labels are all of one class: the ROC AUC is undefined"
            return Verdict("Decay", "not measured", False, observed, rule)
        drop = perf["baseline_roc_auc"] - perf["roc_auc"]
        observed = (
            f"live ROC AUC {perf['roc_auc']:.4f} on {labelled:,} labels against the evaluation's "
            f"{perf['baseline_roc_auc']:.4f}: a drop of {compared(drop, rules.max_auc_drop, strict=True)}"
        )
        return Verdict("Decay", _yes(self.decay), self.decay, observed, rule)

    @property
    def reasons(self) -> list[str]:
        """The verdicts that call for action, each with its numbers and rule."""
        return [v.line() for v in self.verdicts()[1:] if v.flagged]

    def live_metrics(self) -> list[dict[str, str]]:
        """The live metrics beside the evaluation's, each with its rule and verdict (none without labels)."""
        perf = self.performance
        if perf is None:
            return []
        rules = self.rules
        enough = "roc_auc" in perf
        rows = [
            {
                "metric": "labels",
                "live": f"{perf['labelled']:,} arrived, {perf['unlabelled']:,} not yet",
                "evaluation": "",
                "rule": f"live metrics need at least {rules.min_labels:,} labels (monitor.min_labels)",
                "verdict": "enough" if enough else f"too few: {perf['labelled']:,} < {rules.min_labels:,}",
            }
        ]
        if not enough:
            return rows
        decay = self.decay_verdict()
        rows.append(
            {
                "metric": "ROC AUC",
                "live": _metric(perf["roc_auc"]),
                "evaluation": _metric(perf["baseline_roc_auc"]),
                "rule": f"decay when more than {rules.max_auc_drop:g} below the evaluation's (monitor.max_auc_drop)",
                "verdict": f"decay: {decay.verdict}",
            }
        )
        reported = "reported, no threshold"
        for metric, live, baseline in (
            ("PR AUC", "pr_auc", "baseline_pr_auc"),
            ("log loss", "log_loss", "baseline_log_loss"),
            ("Brier score", "brier", "baseline_brier"),
            ("delay rate, observed", "positive_rate", "baseline_positive_rate"),
            ("delay rate, predicted (mean probability)", "predicted_rate", ""),
        ):
            evaluation = _metric(perf[baseline]) if baseline in perf else ""
            rows.append(
                {
                    "metric": metric,
                    "live": _metric(perf[live]),
                    "evaluation": evaluation,
                    "rule": reported,
                    "verdict": "—",
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "rows": self.rows,
            "retrain": self.retrain,
            "flagged": self.flagged,
            "recent_windows": (
                None
                if self.tally is None
                else {
                    "k": self.tally.k,
                    "n": self.tally.n,
                    "flagged": self.tally.flagged,
                    "windows": [asdict(r) for r in self.tally.last],
                }
            ),
            "headline": self.headline,
            "reasons": self.reasons,
            "verdicts": [asdict(v) | {"line": v.line()} for v in self.verdicts()],
            "data_drift": self.data_drift,
            "drift_share": round(self.drift_share, 4),
            "drifted_features": len(self.drifted),
            "drift_needed": self.drift_needed,
            "prediction_drift": self.prediction_drift,
            "decay": self.decay,
            "thresholds": self.rules.model_dump(),
            "features": [_finite(d.as_dict()) for d in self.features],
            "prediction": _finite(self.prediction.as_dict()),
            "quality": self.quality,
            "performance": self.performance,
            "shadow": self.shadow.summary() if self.shadow else None,
            "ab": self.ab.summary() if self.ab else None,
        }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


def _metric(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


# --- The reference and the windows -----------------------------------------------------------------


def reference(root: Path, params: Params) -> Window:
    """The training rows and the model's probabilities on them: what 'normal' looks like."""
    rows = read_parquet(root / params.paths.train)
    model = dvc.load_model(root, params.paths.model)
    features = rows[list(PROBLEM.features)]
    proba = np.asarray(model.predict_proba(features)[:, 1], dtype=float)
    return Window("training reference", features, proba, rows[PROBLEM.label].astype(float))


def month_window(root: Path, params: Params, month: str) -> Window:
    """A month of the sample (``2013-11``), through the pipeline's own join, schema and features."""
    try:
        period = parse_period(month)
    except ValueError as exc:
        raise MonitorError(f"--month {exc}") from exc
    if period not in PROBLEM.sample_periods():
        first, last = (period_label(p) for p in (PROBLEM.sample_periods()[0], PROBLEM.sample_periods()[-1]))
        raise MonitorError(f"--month {month!r}: the sample holds the months {first} to {last}")
    raw = root / params.paths.raw
    try:
        joined = PROBLEM.sample_window(raw, period, params.ingest)
    except SampleError as exc:
        raise MonitorError(f"--month {month!r}: {exc}") from exc
    quality = quality_summary(check(joined, PROBLEM.schema(raw), PROBLEM.warnings()))
    features = PROBLEM.features_of(joined)[list(PROBLEM.features)]
    model = dvc.load_model(root, params.paths.model)
    proba = np.asarray(model.predict_proba(features)[:, 1], dtype=float)
    labels = PROBLEM.labels_of(joined, params.label).astype(float)
    start = pd.Timestamp(year=period // 100, month=period % 100, day=1, tz="UTC")
    span = (start, start + pd.offsets.MonthBegin(1))
    name = f"{PROBLEM.entity}s of {month}"
    return Window(name, features, proba, labels.reset_index(drop=True), quality, span=span)


def quality_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The validate stage's report on a month (:func:`flightdelay.stages.validate.check`), with the rule it applies."""
    return {
        "status": report["status"],
        "rows": report["rows"],
        "errors": report["errors"],
        "warnings": report["warnings"],
        "rule": "the window fails when any hard check of the pipeline's schema fails, as in the validate stage; "
        "a soft check with failing rows is a warning: counted, not failing",
    }


def read_log(path: Path) -> tuple[pd.DataFrame, int]:
    """The service's prediction log and its rotated files (``path.N`` ... ``path.1``, ``path``), oldest first.

    One JSON record per line with time, request_id, input and output. A line that is not such a record
    (the torn last line of a pod that was killed mid-write) is skipped and counted, not fatal: the
    second value is how many were skipped.
    """
    if path.suffix.lower() in (".parquet", ".csv"):
        return read_scored(path)
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
                if record.get("variant") == variants.SHADOW:
                    continue  # the shadow's answers to production's requests: compared in variants, not here
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


def read_scored(path: Path) -> tuple[pd.DataFrame, int]:
    """The output of ``flightdelay batch-predict`` as a prediction log: its scored rows, and how many were not
    scored (a row with an ``error``), which are counted, as a log's unreadable lines are."""
    from flightdelay import batch

    if not path.is_file():
        raise MonitorError(f"{path}: no such batch output")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise MonitorError(f"{path}: unreadable batch output ({exc})") from exc
    columns = [batch.REQUEST_ID, *PROBLEM.request_columns(), "delay_probability", "scored_at", "error"]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MonitorError(f"{path}: not a batch-predict output: the columns {missing} are missing")
    scored = frame[frame["error"].isna()]
    if scored.empty:
        raise MonitorError(f"{path}: the batch output holds no scored rows ({len(frame)} rows with an error)")
    inputs = [
        {column: batch.plain(value) for column, value in row.items()}
        for row in scored[list(PROBLEM.request_columns())].to_dict(orient="records")
    ]
    log = pd.DataFrame(
        {
            "time": (pd.to_datetime(scored["scored_at"], utc=True) - pd.Timestamp(0, tz="UTC"))
            .dt.total_seconds()
            .to_numpy(),
            "request_id": scored[batch.REQUEST_ID].astype(str).to_numpy(),
            "input": inputs,
            "delay_probability": scored["delay_probability"].astype(float).to_numpy(),
        }
    )
    repeated = log["request_id"][log["request_id"].duplicated()].unique()
    if len(repeated):
        raise MonitorError(f"{path}: request ids scored more than once: {', '.join(repeated[:5])}")
    return log, len(frame) - len(scored)


def read_labels(path: Path) -> pd.Series:
    """Labels that arrived later: ``request_id`` and the problem's outcome column (for flights ``arr_delay``,
    minutes; empty = cancelled or diverted).

    CSV or JSON lines. The same id twice with the same outcome counts once; with different outcomes it
    is an error that names the id.
    """
    if not path.is_file():
        raise MonitorError(f"{path}: no such labels file")
    try:
        frame = pd.read_json(path, lines=True) if path.suffix in (".jsonl", ".json") else pd.read_csv(path)
    except ValueError as exc:
        raise MonitorError(f"{path}: unreadable labels ({exc})") from exc
    outcome = PROBLEM.outcome
    missing = {"request_id", outcome} - set(frame.columns)
    if missing:
        raise MonitorError(f"{path}: labels need the columns request_id and {outcome}; missing {sorted(missing)}")
    frame = frame[["request_id", outcome]].astype({"request_id": str}).drop_duplicates()
    conflicting = frame["request_id"][frame["request_id"].duplicated()].unique()
    if len(conflicting):
        raise MonitorError(f"{path}: conflicting labels for request ids {', '.join(conflicting[:5])}")
    return frame.set_index("request_id")[outcome]


def join_labels(request_ids: pd.Series, arrived: pd.Series, options: Any) -> pd.Series:
    """The label of each logged prediction, in log order: 1 or 0 as the problem reads the outcome, NaN where
    none arrived yet.

    ``arrived`` maps request id to outcome (for flights the arrival delay, NaN for cancelled or diverted,
    which counts as delayed); ids it does not hold have no label yet.
    """
    known = request_ids.isin(arrived.index).to_numpy()
    labels = PROBLEM.label_of_outcome(request_ids.map(arrived), options).to_numpy(dtype=float)
    return pd.Series(np.where(known, labels, np.nan), index=request_ids.index, name=PROBLEM.label)


def log_window(root: Path, params: Params, log_path: Path, labels_path: Path | None = None) -> Window:
    """The prediction log as a window: features rebuilt from the logged inputs, the logged probabilities."""
    log, skipped = read_log(log_path)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp)
        verified = dvc.verify_output(root, "train", params.paths.model)  # unpickled by Predictor.load below
        serving.write_bundle(bundle, verified, root / params.paths.raw, root / params.paths.metrics, {})
        predictor = serving.Predictor.load(bundle)
    model = PROBLEM.request_model()
    problems = []
    for index, request in enumerate(log["input"]):
        try:
            model.model_validate(request)
        except ValueError as exc:
            problems.append(f"record {index} ({log['request_id'][index]}): {str(exc).splitlines()[0]}")
    if problems:
        raise MonitorError(f"{log_path}: {len(problems)} logged inputs fail the request schema, e.g. {problems[0]}")
    joined = predictor.rows(list(log["input"]))
    features = PROBLEM.features_of(joined)[list(PROBLEM.features)]
    labels = None
    if labels_path is not None:
        labels = join_labels(log["request_id"], read_labels(labels_path), params.label)
    table = log_path.suffix.lower() in (".parquet", ".csv")  # batch-predict's output: a row per flight
    unread = ("(row)", "scored (batch-predict gave an error)") if table else ("(log line)", "a prediction record")
    warnings = [{"column": unread[0], "check": unread[1], "failures": skipped}] if skipped else []
    quality = {
        "status": "passed",  # an input that fails the request model has raised above
        "rows": len(log),
        "skipped_lines": skipped,
        "errors": [],
        "warnings": warnings,
        "rule": "every logged input must pass the service's request model (a log with one that does not is "
        "refused); a line that is not a prediction record is skipped and counted as a warning",
    }
    times = pd.to_datetime(log["time"], unit="s", utc=True)
    span = (times.min().floor("s"), times.max().ceil("s"))
    return Window(
        f"prediction log {log_path.name}", features, log["delay_probability"].to_numpy(), labels, quality, times, span
    )


# --- The comparison ----------------------------------------------------------------------------


def compare(base: Window, window: Window, params: Params, baseline: dict[str, Any]) -> Result:
    """Data drift per feature, prediction drift, data quality and, with labels, decay against ``baseline``."""
    thresholds = params.monitor
    drifts = frame_drift(
        base.features, window.features, list(PROBLEM.features), psi_threshold=thresholds.psi, p_value=thresholds.p_value
    )
    share = sum(d.drifted for d in drifts) / len(drifts)
    prediction = column_drift(
        pd.Series(base.proba, name="delay_probability"),
        pd.Series(window.proba, name="delay_probability"),
        psi_threshold=thresholds.prediction_psi,
        p_value=thresholds.p_value,
    )
    performance, decay = _performance(window, params, baseline)
    return Result(
        window=window.name,
        rows=len(window.features),
        features=drifts,
        prediction=prediction,
        drift_share=share,
        data_drift=share >= thresholds.drift_share,
        prediction_drift=prediction.drifted,
        quality=window.quality,
        performance=performance,
        decay=decay,
        rules=thresholds,
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
    for metric in ("pr_auc", "brier", "positive_rate"):
        if metric in baseline["test"]:
            summary[f"baseline_{metric}"] = float(baseline["test"][metric])
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
    # The window first: a window that cannot be read fails before the reference's model is loaded.
    window = month_window(root, params, month) if month else log_window(root, params, log, labels)  # type: ignore[arg-type]
    base = reference(root, params)
    baseline = json.loads((root / params.paths.metrics).read_text())
    result = compare(base, window, params, baseline)
    if log is not None:
        arrived = read_labels(labels) if labels else None
        answers = variants.answers(log)
        result.shadow = shadow_of(answers, arrived, params, len(window.features))
        result.ab = ab_of(answers, arrived, params)
    return result, base, window


def ab_of(answers: list[dict[str, Any]], arrived: pd.Series | None, params: Params) -> variants.ABComparison | None:
    """The A/B test's variants, each on its own share of the log's requests; None when no test ran."""
    tested = variants.ab_answers(answers)
    if tested.empty:
        return None
    joined = join_labels(tested["request_id"], arrived, params.label) if arrived is not None else None
    return variants.compare_ab(tested, joined, params.monitor)


def shadow_of(
    answers: list[dict[str, Any]], arrived: pd.Series | None, params: Params, rows: int
) -> variants.ShadowComparison | None:
    """The shadow against production on the log's paired requests (``variants.answers``); None when no shadow
    answered."""
    pairs = variants.shadow_pairs(answers)
    if pairs.empty:
        return None
    joined = join_labels(pairs["request_id"], arrived, params.label) if arrived is not None else None
    return variants.compare_shadow(pairs, rows, joined, params.monitor)


# --- The recent windows --------------------------------------------------------------------------


def judge(
    result: Result, window: Window, history: History, *, model: str, rules: Monitor, now: pd.Timestamp
) -> History:
    """Record the window's verdict against ``model`` and weigh the recent windows (``result.tally``).

    Returns the history with the verdict; a window that fails the data checks is not recorded (its data is
    fixed, then judged), and the history comes back as it was.
    """
    if not result.quality_failed:
        key = window.key  # refuses a window without a span
        start, end = window.span  # type: ignore[misc]
        record = Record(
            window=key,
            name=window.name,
            start=_iso(start),
            end=_iso(end),
            model=model,
            flagged=result.flagged,
            causes=tuple(result.causes),
            recorded=_iso(now),
        )
        history = history.with_record(record)
    result.tally = history.tally(model, rules.retrain_k, rules.retrain_n)
    return history


def _iso(moment: pd.Timestamp) -> str:
    return moment.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def watch_month(root: Path, params: Params, history: History, model: str) -> str:
    """``--month next``: the first month after the data's latest that no verdict against ``model`` covers yet.

    Once every later month of the sample has one, the latest of them again (its verdict is replaced).
    """
    from flightdelay.retrain import later_months

    later = [period_label(p) for p in later_months(root, params.paths.raw)]
    if not later:
        raise MonitorError("every month of the sample is in the data already: nothing to watch")
    judged = set(history.judged(model))
    return next((month for month in later if month not in judged), later[-1])
