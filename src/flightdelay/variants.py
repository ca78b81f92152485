"""Shadow against production on the very same requests: how often they decide differently, by how much their
probabilities differ, and, once labels arrive, which of the two scores better.

The service logs the shadow's answers beside production's under production's request ids
(``flightdelay.shadow``), so a pair is two records with one id. The verdict follows rules in
``params.yaml`` (``monitor.shadow_max_disagreement``, ``monitor.min_pairs``, ``monitor.min_labels``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flightdelay import serving
from flightdelay.core import metrics as scoring
from flightdelay.settings import Monitor

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval
SHADOW = "shadow"


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: sound near 0 and 1, where the normal approximation is not."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def read_pairs(path: Path) -> pd.DataFrame:
    """Production's and the shadow's answers to the same requests, one row per request both answered.

    Columns: request_id, time, production / shadow probability, decision, threshold and model version.
    Empty when the log holds no shadow records. Unreadable lines are left to ``monitor.read_log``, which
    counts them.
    """
    answers: dict[str, list[dict[str, Any]]] = {"production": [], SHADOW: []}
    for file in serving.rotated(path):
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                output = record["output"]
                row = {
                    "request_id": str(record["request_id"]),
                    "time": float(record["time"]),
                    "probability": float(output["delay_probability"]),
                    "delayed": bool(output["delayed"]),
                    "threshold": float(output["threshold"]),
                    "model_version": str(output.get("model_version")),
                }
            except (ValueError, KeyError, TypeError):
                continue
            answers[SHADOW if record.get("variant") == SHADOW else "production"].append(row)
    if not answers[SHADOW]:
        return pd.DataFrame()
    production = pd.DataFrame.from_records(answers["production"]).drop_duplicates("request_id")
    shadow = pd.DataFrame.from_records(answers[SHADOW]).drop_duplicates("request_id").drop(columns="time")
    return production.merge(shadow, on="request_id", suffixes=("_production", "_shadow"))


@dataclass(frozen=True)
class ShadowComparison:
    """The two variants on the same requests, and what the rules make of it."""

    production_rows: int  # production's answers in the window, copied or not
    pairs: int  # requests both answered
    versions: dict[str, str]  # variant -> model versions seen
    disagreement: float  # share of pairs with different decisions
    interval: tuple[float, float]  # its 95% Wilson interval
    differences: dict[str, float]  # |p_shadow - p_production|: mean, p95, max; and the mean signed difference
    labelled: int
    live: dict[str, dict[str, float]] | None  # variant -> metrics on the labelled pairs, once there are enough
    rules: Monitor

    @property
    def enough_pairs(self) -> bool:
        return self.pairs >= self.rules.min_pairs

    @property
    def flagged(self) -> bool:
        """The shadow decides differently from production more often than the rule allows."""
        return self.enough_pairs and self.disagreement > self.rules.shadow_max_disagreement

    @property
    def better(self) -> bool | None:
        """Whether the shadow scores better on the labelled pairs (ROC AUC up, log loss not worse); None without."""
        if self.live is None:
            return None
        shadow, production = self.live[SHADOW], self.live["production"]
        return shadow["roc_auc"] > production["roc_auc"] and shadow["log_loss"] <= production["log_loss"]

    @property
    def verdict(self) -> str:
        """Which to promote, or why it cannot be said yet."""
        if not self.enough_pairs:
            return f"not enough paired requests yet ({self.pairs:,} < {self.rules.min_pairs:,}, monitor.min_pairs)"
        if self.better is not None:
            return "promote the shadow" if self.better else "keep production"
        return "review the shadow before promoting" if self.flagged else "the shadow agrees with production"

    def observed(self) -> str:
        low, high = self.interval
        text = (
            f"{self.pairs:,} of {self.production_rows:,} requests answered by both; decisions differ on "
            f"{self.disagreement:.1%} (95% CI {low:.1%} to {high:.1%}); probabilities differ by "
            f"{self.differences['mean_abs']:.4f} on average (p95 {self.differences['p95_abs']:.4f})"
        )
        if self.live is not None:
            shadow, production = self.live[SHADOW], self.live["production"]
            text += (
                f"; on {self.labelled:,} labelled requests ROC AUC {shadow['roc_auc']:.4f} (shadow) vs "
                f"{production['roc_auc']:.4f}, log loss {shadow['log_loss']:.4f} vs {production['log_loss']:.4f}"
            )
        elif self.labelled:
            text += f"; {self.labelled:,} labelled, fewer than {self.rules.min_labels:,} (monitor.min_labels)"
        return text

    def rule(self) -> str:
        return (
            f"flagged when decisions differ on more than {self.rules.shadow_max_disagreement:.1%} of at least "
            f"{self.rules.min_pairs:,} pairs (monitor.shadow_max_disagreement, monitor.min_pairs); with "
            f"{self.rules.min_labels:,} labels, promote the shadow when its ROC AUC is higher and its log loss "
            "no worse on the same requests"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "flagged": self.flagged,
            "production_rows": self.production_rows,
            "pairs": self.pairs,
            "versions": self.versions,
            "disagreement": round(self.disagreement, 6),
            "disagreement_ci95": [round(v, 6) for v in self.interval],
            "probability_differences": {k: round(v, 6) for k, v in self.differences.items()},
            "labelled": self.labelled,
            "live": self.live,
            "rule": self.rule(),
        }


def compare_shadow(
    pairs: pd.DataFrame, production_rows: int, labels: pd.Series | None, rules: Monitor
) -> ShadowComparison:
    """Judge the pairs of ``read_pairs``; ``labels`` (0/1/NaN by request id) from ``monitor.join_labels``."""
    count = len(pairs)
    differ = int((pairs["delayed_production"] != pairs["delayed_shadow"]).sum()) if count else 0
    delta = (pairs["probability_shadow"] - pairs["probability_production"]).to_numpy() if count else np.zeros(0)
    absolute = np.abs(delta)
    differences = {
        "mean_abs": float(absolute.mean()) if count else 0.0,
        "p95_abs": float(np.quantile(absolute, 0.95)) if count else 0.0,
        "max_abs": float(absolute.max()) if count else 0.0,
        "mean_signed": float(delta.mean()) if count else 0.0,
    }
    versions = {
        variant: ", ".join(sorted(set(pairs[f"model_version_{variant}"]))) if count else ""
        for variant in ("production", SHADOW)
    }
    live = None
    labelled = 0
    if labels is not None and count:
        known = labels.notna().to_numpy()
        labelled = int(known.sum())
        if labelled >= rules.min_labels:
            y = labels.to_numpy()[known].astype(int)
            live = {}
            for variant in ("production", SHADOW):
                chosen = pairs[known]
                threshold = float(chosen[f"threshold_{variant}"].iloc[0])
                scores = scoring.score(y, chosen[f"probability_{variant}"].to_numpy(), threshold)
                live[variant] = {k: scores[k] for k in ("roc_auc", "log_loss", "brier", "recall", "precision")}
    return ShadowComparison(
        production_rows=production_rows,
        pairs=count,
        versions=versions,
        disagreement=differ / count if count else 0.0,
        interval=wilson(differ, count),
        differences=differences,
        labelled=labelled,
        live=live,
        rules=rules,
    )
