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


def answers(path: Path) -> list[dict[str, Any]]:
    """Every readable answer in the log, rotated files oldest first, with its variant (None outside a test).

    Unreadable lines are left to ``monitor.read_log``, which counts them.
    """
    rows = []
    for file in serving.rotated(path):
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                output = record["output"]
                rows.append(
                    {
                        "request_id": str(record["request_id"]),
                        "variant": record.get("variant"),
                        "time": float(record["time"]),
                        "probability": float(output["delay_probability"]),
                        "delayed": bool(output["delayed"]),
                        "threshold": float(output["threshold"]),
                        "model_version": str(output.get("model_version")),
                    }
                )
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def shadow_pairs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Production's and the shadow's answers (of :func:`answers`) to the same requests, one row per request both
    answered.

    Columns: request_id, time, production / shadow probability, decision, threshold and model version.
    Empty when the log holds no shadow records.
    """
    shadow = [r for r in rows if r["variant"] == SHADOW]
    if not shadow:
        return pd.DataFrame()
    production = pd.DataFrame.from_records([r for r in rows if r["variant"] != SHADOW]).drop_duplicates("request_id")
    answered = pd.DataFrame.from_records(shadow).drop_duplicates("request_id").drop(columns=["time", "variant"])
    return production.drop(columns="variant").merge(answered, on="request_id", suffixes=("_production", "_shadow"))


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
    def decision_due(self) -> bool:
        """Flagged, or the labels have decided between the two."""
        return self.enough_pairs and (self.flagged or self.better is not None)

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
    """Judge the pairs of ``shadow_pairs``; ``labels`` (0/1/NaN by request id) from ``monitor.join_labels``."""
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


# --- A/B: two variants answering disjoint shares of the traffic --------------------------------------

Z80 = 0.841621  # the normal quantile for 80% power


def ab_answers(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The answers (of :func:`answers`) of an A/B test: request_id, variant (a or b), probability, decision,
    threshold, model version.

    Empty when the log holds no A/B records (the service tags them only while a test runs).
    """
    tested = [r for r in rows if r["variant"] in ("a", "b")]
    return pd.DataFrame.from_records(tested).drop_duplicates("request_id") if tested else pd.DataFrame()


def _log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each request's log loss (clipped as scikit-learn clips), so its mean and variance give a confidence interval."""
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    loss: np.ndarray = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
    return loss


@dataclass(frozen=True)
class ABComparison:
    """The variants on their own shares of the traffic, and, with labels, which is better and how sure we are."""

    requests: dict[str, int]  # variant -> answers in the window
    versions: dict[str, str]
    labelled: dict[str, int]
    live: dict[str, dict[str, float]] | None  # variant -> log loss (mean, ci low, ci high), ROC AUC, ...
    difference: tuple[float, float, float] | None  # log loss B - A: estimate, 95% CI low, high
    needed: int | None  # labelled requests per variant to detect monitor.ab_min_effect with 80% power
    rules: Monitor

    @property
    def verdict(self) -> str:
        if self.difference is None or self.needed is None:
            return (
                f"not enough labels yet (at least {self.rules.min_labels:,} per variant, monitor.min_labels; "
                f"have {self.labelled.get('a', 0):,} for a and {self.labelled.get('b', 0):,} for b)"
            )
        _, low, high = self.difference
        if high < 0:
            return "promote b"
        if low > 0:
            return "keep a"
        have = min(self.labelled.values())
        if have >= self.needed:
            return f"keep a: no difference of {self.rules.ab_min_effect:g} in log loss or more"
        return f"keep testing: about {self.needed - have:,} more labelled requests per variant"

    @property
    def flagged(self) -> bool:
        """A decision is due: one variant is better."""
        return self.verdict in ("promote b", "keep a")

    def observed(self) -> str:
        share = self.requests.get("b", 0) / max(sum(self.requests.values()), 1)
        text = f"{self.requests.get('a', 0):,} requests answered by a, {self.requests.get('b', 0):,} by b ({share:.1%})"
        if self.live is not None and self.difference is not None:
            a, b = self.live["a"], self.live["b"]
            estimate, low, high = self.difference
            text += (
                f"; log loss a {a['log_loss']:.4f} (95% CI {a['log_loss_low']:.4f} to {a['log_loss_high']:.4f}), "
                f"b {b['log_loss']:.4f} ({b['log_loss_low']:.4f} to {b['log_loss_high']:.4f}); b - a "
                f"{estimate:+.4f} (95% CI {low:+.4f} to {high:+.4f}); {self.needed:,} labelled per variant detect "
                f"{self.rules.ab_min_effect:g}"
            )
        return text

    def rule(self) -> str:
        return (
            "promote b when the 95% confidence interval of the log-loss difference (b - a, Welch) lies below 0, keep a "
            f"when it lies above; otherwise keep testing until each variant has the labelled requests that detect a "
            f"difference of {self.rules.ab_min_effect:g} with 80% power (monitor.ab_min_effect), at least "
            f"{self.rules.min_labels:,} (monitor.min_labels)"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "requests": self.requests,
            "versions": self.versions,
            "labelled": self.labelled,
            "live": self.live,
            "log_loss_difference_b_minus_a": list(self.difference) if self.difference else None,
            "labelled_needed_per_variant": self.needed,
            "rule": self.rule(),
        }


def compare_ab(answers: pd.DataFrame, labels: pd.Series | None, rules: Monitor) -> ABComparison:
    """Judge the answers of ``ab_answers``; ``labels`` (0/1/NaN, aligned with them) from ``monitor.join_labels``."""
    requests = {v: int((answers["variant"] == v).sum()) for v in ("a", "b")}
    versions = {v: ", ".join(sorted(set(answers.loc[answers["variant"] == v, "model_version"]))) for v in ("a", "b")}
    labelled = dict.fromkeys(("a", "b"), 0)
    losses: dict[str, np.ndarray] = {}
    live: dict[str, dict[str, float]] = {}
    if labels is not None:
        known = labels.notna().to_numpy()
        for variant in ("a", "b"):
            chosen = known & (answers["variant"] == variant).to_numpy()
            labelled[variant] = int(chosen.sum())
            if labelled[variant] < max(rules.min_labels, 2):
                continue
            y = labels.to_numpy()[chosen].astype(int)
            p = answers["probability"].to_numpy()[chosen]
            losses[variant] = _log_loss(y, p)
            half = Z95 * losses[variant].std(ddof=1) / math.sqrt(len(y))
            threshold = float(answers["threshold"].to_numpy()[chosen][0])
            scores = scoring.score(y, p, threshold)
            mean = float(losses[variant].mean())
            live[variant] = {
                "log_loss": mean,
                "log_loss_low": mean - half,
                "log_loss_high": mean + half,
                "roc_auc": scores["roc_auc"],
                "brier": scores["brier"],
            }
    difference, needed = None, None
    if len(losses) == 2:
        a, b = losses["a"], losses["b"]
        variance = a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)
        estimate = float(b.mean() - a.mean())
        half = Z95 * math.sqrt(variance)
        difference = (estimate, estimate - half, estimate + half)
        pooled = a.var(ddof=1) + b.var(ddof=1)
        needed = max(rules.min_labels, math.ceil((Z95 + Z80) ** 2 * pooled / rules.ab_min_effect**2))
    return ABComparison(requests, versions, labelled, live or None, difference, needed, rules)
