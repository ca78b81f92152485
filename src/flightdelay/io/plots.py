"""Offline PNGs of the base and PR curves for the PR report (matplotlib, no display, no network)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

CURVES = {
    "roc": ("fpr", "tpr", "ROC", "false positive rate", "true positive rate"),
    "precision_recall": ("recall", "precision", "Precision-recall", "recall", "precision"),
    "calibration": ("predicted", "observed", "Calibration", "predicted probability", "observed delay rate"),
}


def render(out: Path, pr: Mapping[str, list[dict[str, Any]]], base: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """One PNG per curve with the base (if any) and the PR; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (x, y, title, xlabel, ylabel) in CURVES.items():
        if name not in pr:
            continue
        figure, axes = plt.subplots(figsize=(5, 4), dpi=100)
        if name in base:
            axes.plot([r[x] for r in base[name]], [r[y] for r in base[name]], label="base", linestyle="--")
        axes.plot([r[x] for r in pr[name]], [r[y] for r in pr[name]], label="PR")
        if name in ("roc", "calibration"):
            axes.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
        axes.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1))
        axes.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(out / f"{name}.png")
        plt.close(figure)
        written.append(f"{name}.png")
    return written
