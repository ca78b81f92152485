"""The monitor's outputs: a self-contained HTML report (plots inlined), a JSON summary, a markdown digest.

The HTML opens without network: the plots are PNGs rendered offline by matplotlib and embedded as
data URIs, the styling is a few inline rules.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flightdelay.core.drift import Drift
from flightdelay.io.files import atomic_path

MARKER = "<!-- flightdelay-monitor -->"
PLOTTED_FEATURES = 6


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figures(result: Any, base: Any, window: Any) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    drifts: list[Drift] = [d for d in result.features if not math.isnan(d.psi)]
    figure, axes = plt.subplots(figsize=(7, max(3, 0.22 * len(drifts))))
    axes.barh(
        [d.column for d in drifts][::-1],
        [d.psi for d in drifts][::-1],
        color=["#c0392b" if d.drifted else "#7f8c8d" for d in drifts][::-1],
    )
    axes.set(title="Drift per feature (PSI; red: drifted)", xlabel="population stability index")
    figures.append(("Drift scores", _png(figure)))

    figure, axes = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 41).tolist()
    axes.hist(base.proba, bins=bins, density=True, alpha=0.5, label="reference")
    axes.hist(window.proba, bins=bins, density=True, alpha=0.5, label="window")
    axes.set(title=f"Predicted delay probability (PSI {result.prediction.psi:.3f})", xlabel="probability")
    axes.legend()
    figures.append(("Predictions", _png(figure)))

    for drift in drifts[:PLOTTED_FEATURES]:
        figure, axes = plt.subplots(figsize=(6, 3.2))
        ref, win = base.features[drift.column].dropna(), window.features[drift.column].dropna()
        if drift.kind == "numeric":
            edges = np.unique(np.quantile(ref.to_numpy(float), np.linspace(0, 1, 31)))
            edges = edges if len(edges) > 1 else np.array([edges[0] - 0.5, edges[0] + 0.5])
            axes.hist(ref, bins=edges.tolist(), density=True, alpha=0.5, label="reference")
            axes.hist(win.clip(edges[0], edges[-1]), bins=edges.tolist(), density=True, alpha=0.5, label="window")
        else:
            shares = (
                pd.DataFrame(
                    {
                        "reference": ref.astype(str).value_counts(normalize=True),
                        "window": win.astype(str).value_counts(normalize=True),
                    }
                )
                .fillna(0)
                .sort_values("reference", ascending=False)
                .head(15)
            )
            shares.plot.bar(ax=axes, alpha=0.7)
        axes.set(title=f"{drift.column}: PSI {drift.psi:.3f}, {drift.test} p={drift.p_value:.2g}")
        axes.legend()
        figures.append((drift.column, _png(figure)))

    if window.times is not None and window.labels is not None and window.labels.notna().any():
        frame = pd.DataFrame({"day": window.times.dt.floor("D"), "p": window.proba, "y": window.labels})
        daily = frame.dropna().groupby("day").agg(predicted=("p", "mean"), observed=("y", "mean"))
        figure, axes = plt.subplots(figsize=(6, 3.2))
        daily.plot(ax=axes, marker="o")
        axes.set(title="Predicted vs observed delay rate per day", ylabel="rate")
        figures.append(("Trend", _png(figure)))
    return figures


def digest(result: Any) -> str:
    """The markdown digest: the verdict, the reasons, the most drifted features, live metrics."""
    verdict = "🔴 retraining recommended" if result.retrain else "🟢 no action needed"
    lines = [MARKER, f"## Model monitor: {verdict}", "", f"Window: **{result.window}**, {result.rows:,} rows.", ""]
    lines += [f"- {reason}" for reason in result.reasons] or ["- no drift or decay past the thresholds"]
    lines += ["", "| feature | PSI | test | p-value | drifted |", "|---|---:|---|---:|:---:|"]
    for drift in result.features[:10]:
        psi = "n/a" if math.isnan(drift.psi) else f"{drift.psi:.3f}"
        lines.append(
            f"| {drift.column} | {psi} | {drift.test} | {drift.p_value:.2g} | {'yes' if drift.drifted else ''} |"
        )
    lines.append(
        f"| *predictions* | {result.prediction.psi:.3f} | {result.prediction.test} | {result.prediction.p_value:.2g} "
        f"| {'yes' if result.prediction.drifted else ''} |"
    )
    lines += [
        "",
        f"Data quality: {result.quality.get('status', 'n/a')}"
        f" ({len(result.quality.get('errors', []))} errors, {len(result.quality.get('warnings', []))} warnings).",
    ]
    if result.performance:
        perf = result.performance
        if "roc_auc" in perf:
            lines.append(
                f"Live metrics on {perf['labelled']:,} labelled predictions: ROC AUC {perf['roc_auc']:.4f} "
                f"(evaluation {perf['baseline_roc_auc']:.4f}), log loss {perf['log_loss']:.4f} "
                f"(evaluation {perf['baseline_log_loss']:.4f}), delay rate observed {perf['positive_rate']:.3f} "
                f"vs predicted {perf['predicted_rate']:.3f}."
            )
        else:
            lines.append(perf.get("note", ""))
    return "\n".join(lines) + "\n"


def write(out: Path, result: Any, base: Any, window: Any) -> dict[str, Path]:
    """Write ``report.html``, ``summary.json`` and ``digest.md`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    text = digest(result)
    figures = _figures(result, base, window)
    body = "\n".join(
        f"<figure><img alt='{html.escape(title)}' src='{uri}'><figcaption>{html.escape(title)}</figcaption></figure>"
        for title, uri in figures
    )
    rows = "\n".join(
        f"<tr class='{'drifted' if d.drifted else ''}'><td>{html.escape(d.column)}</td><td>{d.kind}</td>"
        f"<td>{d.psi:.4f}</td><td>{d.test}</td><td>{d.statistic:.4f}</td><td>{d.p_value:.3g}</td>"
        f"<td>{d.reference_missing:.1%}</td><td>{d.window_missing:.1%}</td></tr>"
        for d in result.features
    )
    reasons = (
        "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
        or "<li>no drift or decay past the thresholds</li>"
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model monitor: {html.escape(result.window)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
td:first-child {{ text-align: left; }} tr.drifted {{ background: #fdecea; }}
figure {{ display: inline-block; margin: 0.5rem; }} img {{ max-width: 34rem; }}
</style></head><body>
<h1>Model monitor: {"retraining recommended" if result.retrain else "no action needed"}</h1>
<p>Window: <strong>{html.escape(result.window)}</strong>, {result.rows:,} rows, against the training reference.</p>
<ul>{reasons}</ul>
{body}
<h2>Drift per feature</h2>
<table><tr><th>feature</th><th>type</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th>
<th>missing (ref)</th><th>missing (window)</th></tr>
{rows}
</table>
<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=2, default=str))}</pre>
</body></html>
"""
    paths = {"html": out / "report.html", "json": out / "summary.json", "digest": out / "digest.md"}
    for key, content in (
        ("html", document),
        ("json", json.dumps(summary, indent=2, default=str) + "\n"),
        ("digest", text),
    ):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(content, encoding="utf-8")
    return paths
