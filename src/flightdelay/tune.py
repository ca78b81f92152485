"""Tuning: a time-boxed random search over ``tune.space``, each trial an MLflow child run.

Why a scikit-learn search rather than DVC's experiment queue: every trial shares the featurized
data already in memory, so a trial costs one fit, not a workspace copy and a ``dvc repro``. The
result is adopted the DVC way, with ``dvc exp run -S``, so the winning params still go through
the pipeline, the PR report and the gate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterSampler

from flightdelay.core.model import make_model
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    valid_roc_auc: float
    seconds: float


def candidates(params: Params) -> list[dict[str, Any]]:
    """The trials to run, in order: the current params first, then a seeded random sample of the space."""
    current = params.train.hist_gradient_boosting.model_dump()
    space = {key: list(values) for key, values in params.tune.space.items()}
    sampled = ParameterSampler(space, n_iter=params.tune.max_trials, random_state=params.train.random_state)
    trials = [current] + [current | dict(s) for s in sampled]
    unique: list[dict[str, Any]] = []
    for trial in trials:
        if trial not in unique:
            unique.append(trial)
    return unique[: params.tune.max_trials]


def adopt_command(best: dict[str, Any], current: dict[str, Any] | None = None) -> str:
    """The one line that runs the pipeline with ``best`` as a DVC experiment: only what differs from ``current``."""
    changed = {k: v for k, v in best.items() if current is None or current.get(k) != v}
    sets = " ".join(f"-S train.hist_gradient_boosting.{k}={v}" for k, v in sorted(changed.items()))
    return f"dvc exp run {sets}"


def search(params: Params, train: pd.DataFrame, valid: pd.DataFrame) -> list[Trial]:
    """Run trials until the budget or the trial list runs out; each is logged as a nested MLflow run."""
    import mlflow

    deadline = time.monotonic() + params.tune.budget_seconds
    y_valid = valid[PROBLEM.label].to_numpy()
    trials: list[Trial] = []
    with mlflow.start_run(run_name="tune"):
        mlflow.log_params({"budget_seconds": params.tune.budget_seconds, "max_trials": params.tune.max_trials})
        for number, candidate in enumerate(candidates(params)):
            if time.monotonic() >= deadline:
                break
            started = time.monotonic()
            settings = params.train.model_copy(
                update={
                    "estimator": "hist_gradient_boosting",
                    "hist_gradient_boosting": params.train.hist_gradient_boosting.model_copy(update=candidate),
                }
            )
            model = make_model(settings, PROBLEM.categorical, PROBLEM.numeric).fit(
                train[list(PROBLEM.features)], train[PROBLEM.label].to_numpy()
            )
            auc = float(roc_auc_score(y_valid, model.predict_proba(valid[list(PROBLEM.features)])[:, 1]))
            trial = Trial(candidate, auc, time.monotonic() - started)
            trials.append(trial)
            with mlflow.start_run(run_name=f"trial-{number}", nested=True):
                mlflow.log_params(candidate)
                mlflow.log_metrics({"valid_roc_auc": auc, "fit_seconds": trial.seconds})
        if trials:
            current = params.train.hist_gradient_boosting.model_dump()
            best = ranked(trials, current)[0]
            mlflow.log_metric("best_valid_roc_auc", best.valid_roc_auc)
            mlflow.set_tag("best_params", str(best.params))
            adopt = "nothing: the current params" if best.params == current else adopt_command(best.params, current)
            mlflow.set_tag("adopt", adopt)
        mlflow.set_tag("trials", str(len(trials)))

    return trials


def ranked(trials: list[Trial], current: dict[str, Any] | None = None) -> list[Trial]:
    """Best validation ROC AUC first; on a tie the current params, then the faster fit."""
    return sorted(trials, key=lambda t: (-t.valid_roc_auc, t.params != current, t.seconds))


def summary(trials: list[Trial], current: dict[str, Any], shown: int = 10) -> list[str]:
    """What a search found, as lines to print: the leading trials, then what to do about the best one."""
    if not trials:
        return ["no trial finished within the budget; raise it with --budget"]
    order = ranked(trials, current)
    head = f"{len(trials)} trial{'s' if len(trials) != 1 else ''}, ranked by validation ROC AUC"
    lines = [head + (":" if len(order) <= shown else f"; the best {shown}:")]
    for trial in order[:shown]:
        mark = "  (current params.yaml)" if trial.params == current else ""
        lines.append(f"  {trial.valid_roc_auc:.4f}  {trial.seconds:6.1f}s  {trial.params}{mark}")
    if len(order) > shown:
        lines.append(f"  ... {len(order) - shown} more in the MLflow run `tune`")
    best = order[0]
    if best.params == current:
        lines.append(f"the current params.yaml is already the best found ({best.valid_roc_auc:.4f}); nothing to adopt")
        return lines
    baseline = next((t for t in trials if t.params == current), None)
    gain = f" (+{best.valid_roc_auc - baseline.valid_roc_auc:.4f} over the current params)" if baseline else ""
    lines.append(f"adopt the best{gain} with:\n  {adopt_command(best.params, current)}")
    return lines
