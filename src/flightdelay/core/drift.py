"""Drift statistics between a reference sample and a window: PSI plus a test suited to the column's type.

Numbers: the population stability index over the reference's deciles and the two-sample
Kolmogorov-Smirnov test. Categories: PSI over the categories and the chi-square test of the two
samples' counts. Both come from scipy. With samples this large a test rejects for differences too
small to matter, so a feature drifts only when its PSI also reaches the threshold. Each result
carries the thresholds it was judged by and says in words why it drifted or did not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

_EPSILON = 1e-4  # stands in for an empty bin's share, so PSI stays finite


@dataclass(frozen=True)
class Drift:
    """One column's drift: the PSI, the test's statistic and p-value, the thresholds and the verdict."""

    column: str
    kind: str  # "numeric" or "categorical"
    psi: float
    test: str
    statistic: float
    p_value: float
    drifted: bool
    reference_missing: float
    window_missing: float
    psi_threshold: float  # drifts when the PSI reaches this ...
    p_threshold: float  # ... and the test's p-value is below this

    def because(self) -> str:
        """Why it drifted (both conditions) or did not (the conditions that fail), e.g. ``PSI 0.198 < 0.2``."""
        if math.isnan(self.psi):
            return "no values to compare"
        psi = f"PSI {compared(self.psi, self.psi_threshold)}"
        p = f"p {compared(self.p_value, self.p_threshold)}"
        if self.drifted:
            return f"{psi} and {p}"
        failing = [psi] if self.psi < self.psi_threshold else []
        failing += [p] if not self.p_value < self.p_threshold else []
        return " and ".join(failing)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"because": self.because()}


def compared(value: float, threshold: float, *, strict: bool = False) -> str:
    """``value`` against ``threshold`` with the sign that holds: ``0.128 ≥ 0.1``, or ``0.02 ≤ 0.05`` when ``strict``.

    The rules are "reaches" (``≥`` / ``<``) or, with ``strict``, "exceeds" (``>`` / ``≤``). The value is
    written with as many digits as it takes for the sign to read true: never ``0.100 < 0.1``.
    """
    if math.isnan(value):
        return f"n/a vs {threshold:g}"
    holds = value > threshold if strict else value >= threshold
    sign = (">" if holds else "≤") if strict else ("≥" if holds else "<")
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        shown = float(text)
        if (shown > threshold if strict else shown >= threshold) == holds:
            break
    return f"{text} {sign} {threshold:g}"


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, _EPSILON, None)
    actual = np.clip(actual, _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_psi(reference: np.ndarray, window: np.ndarray, bins: int = 10) -> float:
    """PSI over the reference's quantile bins (ties merged), with open-ended outer bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    cut = np.concatenate([[-np.inf], edges, [np.inf]])
    expected = np.histogram(reference, cut)[0] / len(reference)
    actual = np.histogram(window, cut)[0] / len(window)
    return _psi(expected, actual)


def categorical_psi(reference: pd.Series, window: pd.Series) -> float:
    categories = sorted(set(reference.unique()) | set(window.unique()), key=str)
    expected = reference.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy()
    actual = window.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy()
    return _psi(expected, actual)


def column_drift(reference: pd.Series, window: pd.Series, *, psi_threshold: float, p_value: float) -> Drift:
    """Drift of one column; missing values are left out of the statistics and reported as shares."""
    name = str(reference.name)
    missing = (float(reference.isna().mean()), float(window.isna().mean()))
    ref, win = reference.dropna(), window.dropna()
    categorical = not pd.api.types.is_numeric_dtype(reference)
    kind = "categorical" if categorical else "numeric"
    if len(ref) == 0 or len(win) == 0:
        return Drift(name, kind, math.nan, "none", math.nan, math.nan, False, *missing, psi_threshold, p_value)
    if categorical:
        ref, win = ref.astype(str), win.astype(str)
        psi = categorical_psi(ref, win)
        categories = sorted(set(ref.unique()) | set(win.unique()))
        table = np.array(
            [ref.value_counts().reindex(categories, fill_value=0), win.value_counts().reindex(categories, fill_value=0)]
        )
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            statistic, p = 0.0, 1.0
        else:
            result = stats.chi2_contingency(table)
            statistic, p = float(result.statistic), float(result.pvalue)
        test = "chi-square"
    else:
        values_ref, values_win = ref.to_numpy(dtype=float), win.to_numpy(dtype=float)
        psi = numeric_psi(values_ref, values_win)
        result = stats.ks_2samp(values_ref, values_win)
        statistic, p = float(result.statistic), float(result.pvalue)
        test = "kolmogorov-smirnov"
    drifted = psi >= psi_threshold and p < p_value
    return Drift(name, kind, psi, test, statistic, p, drifted, *missing, psi_threshold, p_value)


def frame_drift(
    reference: pd.DataFrame, window: pd.DataFrame, columns: list[str], *, psi_threshold: float, p_value: float
) -> list[Drift]:
    """Every column's drift, most drifted (by PSI) first."""
    found = [column_drift(reference[c], window[c], psi_threshold=psi_threshold, p_value=p_value) for c in columns]
    return sorted(found, key=lambda d: -d.psi if not math.isnan(d.psi) else math.inf)
