"""Drift statistics between a reference sample and a window: PSI plus a test suited to the column's type.

Numbers: the population stability index over the reference's deciles and the two-sample
Kolmogorov-Smirnov test. Categories: PSI over the categories and the chi-square test of the two
samples' counts. Both come from scipy. With samples this large a test rejects for differences too
small to matter, so a feature drifts only when its PSI also reaches the threshold.
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
    """One column's drift: the PSI, the test's statistic and p-value, and the verdict."""

    column: str
    kind: str  # "numeric" or "categorical"
    psi: float
    test: str
    statistic: float
    p_value: float
    drifted: bool
    reference_missing: float
    window_missing: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    if len(ref) == 0 or len(win) == 0:
        kind = "categorical" if categorical else "numeric"
        return Drift(name, kind, math.nan, "none", math.nan, math.nan, False, *missing)
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
    return Drift(name, "categorical" if categorical else "numeric", psi, test, statistic, p, drifted, *missing)


def frame_drift(
    reference: pd.DataFrame, window: pd.DataFrame, columns: list[str], *, psi_threshold: float, p_value: float
) -> list[Drift]:
    """Every column's drift, most drifted (by PSI) first."""
    found = [column_drift(reference[c], window[c], psi_threshold=psi_threshold, p_value=p_value) for c in columns]
    return sorted(found, key=lambda d: -d.psi if not math.isnan(d.psi) else math.inf)
