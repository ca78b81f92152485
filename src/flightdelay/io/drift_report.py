"""The monitor's outputs: a self-contained HTML report (plots inlined), a JSON summary, a markdown digest.

Every verdict is shown with the numbers it rests on and the rule (threshold and params key) that
turns them into it; the per-feature, data quality and live metric results are tables. The HTML
opens without network: the plots are PNGs rendered offline by matplotlib and embedded as data
URIs, the styling is a few inline rules, and every text that comes from data is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flightdelay.core.drift import Drift
from flightdelay.io.files import atomic_path

if TYPE_CHECKING:
    from flightdelay.monitor import Result, Window
    from flightdelay.variants import ABComparison, ShadowComparison

MARKER = "<!-- flightdelay-monitor -->"
PLOTTED_FEATURES = 6
DIGEST_FEATURES = 10  # the digest lists at least this many features (and every drifted one); the page lists all
_ICONS = {
    "retraining recommended": "🔴",
    "the window fails the data checks": "🟠",
    "drift or decay, not yet enough windows to retrain": "🟡",
    "no action needed": "🟢",
}


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figures(result: Result, base: Window, window: Window) -> list[tuple[str, str]]:
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


def _md(value: object) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows),
    ]


def _html_table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """An HTML table; every header and cell is escaped, each row carries a CSS class (may be empty)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join(
        f"<tr class='{html.escape(css)}'>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
        for css, cells in rows
    )
    return f"<table><tr>{head}</tr>\n{body}\n</table>"


def _feature_rows(drifts: list[Drift]) -> list[list[str]]:
    """Per feature: type, PSI, test, statistic, p-value, the verdict, why, and the missing shares."""
    return [
        [
            d.column,
            d.kind,
            "n/a" if math.isnan(d.psi) else f"{d.psi:.4f}",
            d.test,
            "n/a" if math.isnan(d.statistic) else f"{d.statistic:.4f}",
            "n/a" if math.isnan(d.p_value) else f"{d.p_value:.3g}",
            "yes" if d.drifted else "no",
            d.because(),
            f"{d.reference_missing:.1%}",
            f"{d.window_missing:.1%}",
        ]
        for d in drifts
    ]


def _feature_header(result: Result) -> list[str]:
    rules = result.rules
    return [
        "feature",
        "type",
        f"PSI (drifts at ≥ {rules.psi:g})",
        "test",
        "statistic",
        f"p-value (drifts at < {rules.p_value:g})",
        "drifted",
        "because",
        "missing (reference)",
        "missing (window)",
    ]


QUALITY_HEADER = ["column", "check", "failing rows", "examples", "kind", "effect"]


def _quality_rows(quality: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """One row per failing check: hard errors fail the window, warnings are counted."""
    rows = []
    for kind, effect, css in (("error", "fails the window", "failed"), ("warning", "counted, not failing", "")):
        for found in quality.get(f"{kind}s", []):
            check = str(found.get("check", ""))
            if found.get("description"):
                check += f" ({found['description']})"
            examples = ", ".join(str(e) for e in found.get("examples", []))
            failures = found.get("failures", "")
            count = f"{failures:,}" if isinstance(failures, int) else str(failures)
            rows.append((css, [str(found.get("column", "")), check, count, examples, kind, effect]))
    return rows


LIVE_HEADER = ["metric", "live", "evaluation", "rule", "verdict"]


def _live_rows(result: Result) -> list[list[str]]:
    return [[m["metric"], m["live"], m["evaluation"], m["rule"], m["verdict"]] for m in result.live_metrics()]


def digest(result: Result) -> str:
    """The markdown digest: the headline, each verdict with its numbers and rule, then the tables behind them."""
    headline = result.headline
    verdicts = result.verdicts()
    lines = [MARKER, f"## Model monitor: {_ICONS.get(headline, '')} {headline}", ""]
    lines += [f"Window: **{_md(result.window)}**, {result.rows:,} rows, against the training reference.", ""]
    lines += [f"- **{v.check}: {v.verdict}** — {v.observed}; the rule: {v.rule}" for v in verdicts]
    shown = max(DIGEST_FEATURES, len(result.drifted))
    lines += ["", "### Data drift per feature", "", f"{result.share_rule()} {result.feature_rule()}", ""]
    if shown < len(result.features):
        lines += [f"The {shown} most drifted of the {len(result.features)} features (all of them in report.html):", ""]
    lines += _md_table(_feature_header(result), _feature_rows(result.features[:shown]))
    lines += ["", "### Data quality", "", f"{result.quality_verdict().line()}.", ""]
    rows = _quality_rows(result.quality)
    if rows:
        lines += _md_table(QUALITY_HEADER, [cells for _, cells in rows])
    elif "status" in result.quality:
        lines.append("Every check passed on every row.")
    lines += ["", "### Live metrics", "", f"{result.decay_verdict().line()}.", ""]
    if live := _live_rows(result):
        lines += _md_table(LIVE_HEADER, live)
    if result.shadow is not None:
        lines += ["", "### Shadow against production", "", *_shadow_lines(result.shadow)]
    if result.ab is not None:
        lines += ["", "### A/B test", "", *_ab_lines(result.ab)]
    return "\n".join(lines).rstrip() + "\n"


def _ab_lines(test: ABComparison) -> list[str]:
    lines = [f"**{test.verdict}**: a ({_md(test.versions['a'])}) and b ({_md(test.versions['b'])}).", ""]
    header = ["variant", "requests", "labelled"]
    if test.live is not None:
        header += ["log loss (95% CI)", "ROC AUC"]
    rows = []
    for variant in ("a", "b"):
        row = [variant, f"{test.requests[variant]:,}", f"{test.labelled[variant]:,}"]
        if test.live is not None:
            live = test.live.get(variant)
            interval = f"({live['log_loss_low']:.4f} to {live['log_loss_high']:.4f})" if live else ""
            row += [f"{live['log_loss']:.4f} {interval}", f"{live['roc_auc']:.4f}"] if live else ["", ""]
        rows.append(row)
    lines += _md_table(header, rows)
    if test.difference is not None:
        estimate, low, high = test.difference
        lines += ["", f"Log loss b - a: {estimate:+.4f} (95% CI {low:+.4f} to {high:+.4f})."]
    return [*lines, "", f"The rule: {test.rule()}."]


def _shadow_lines(shadow: ShadowComparison) -> list[str]:
    versions = shadow.versions
    lines = [
        f"**{shadow.verdict}**: production ({_md(versions['production'])}) and the shadow "
        f"({_md(versions['shadow'])}) on the same requests.",
        "",
    ]
    rows = [
        ["requests answered by both", f"{shadow.pairs:,} of {shadow.production_rows:,}"],
        [
            "decisions that differ",
            f"{shadow.disagreement:.2%} (95% CI {shadow.interval[0]:.2%} to {shadow.interval[1]:.2%})",
        ],
        [
            "probability difference, mean / p95 / max",
            " / ".join(f"{shadow.differences[k]:.4f}" for k in ("mean_abs", "p95_abs", "max_abs")),
        ],
    ]
    for variant, metrics in (shadow.live or {}).items():
        rows.append([f"live ROC AUC / log loss, {variant}", f"{metrics['roc_auc']:.4f} / {metrics['log_loss']:.4f}"])
    return [*lines, *_md_table(["", "value"], rows), "", f"The rule: {shadow.rule()}."]


def write(out: Path, result: Result, base: Window, window: Window) -> dict[str, Path]:
    """Write ``report.html``, ``summary.json`` and ``digest.md`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    text = digest(result)
    figures = _figures(result, base, window)
    plots = "\n".join(
        f"<figure><img alt='{html.escape(title)}' src='{uri}'><figcaption>{html.escape(title)}</figcaption></figure>"
        for title, uri in figures
    )
    verdicts = result.verdicts()
    verdict_table = _html_table(
        ["check", "verdict", "the numbers", "the rule"],
        [("flagged" if v.flagged else "", [v.check, v.verdict, v.observed, v.rule]) for v in verdicts],
    )
    features = _html_table(
        _feature_header(result),
        [
            ("drifted" if d.drifted else "", cells)
            for d, cells in zip(result.features, _feature_rows(result.features), strict=True)
        ],
    )
    quality_rows = _quality_rows(result.quality)
    quality = _html_table(QUALITY_HEADER, quality_rows) if quality_rows else ""
    if not quality_rows and "status" in result.quality:
        quality = "<p>Every check passed on every row.</p>"
    live_rows = _live_rows(result)
    live = _html_table(LIVE_HEADER, [("", row) for row in live_rows]) if live_rows else ""
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model monitor: {html.escape(result.window)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 80rem; }}
table {{ border-collapse: collapse; margin: 0.5rem 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }}
tr.drifted, tr.flagged, tr.failed {{ background: #fdecea; }}
figure {{ display: inline-block; margin: 0.5rem; }} img {{ max-width: 34rem; }}
</style></head><body>
<h1>Model monitor: {html.escape(result.headline)}</h1>
<p>Window: <strong>{html.escape(result.window)}</strong>, {result.rows:,} rows, against the training reference.</p>
<h2>Verdicts</h2>
{verdict_table}
<h2>Data drift per feature</h2>
<p class="share-rule">{html.escape(result.share_rule())} {html.escape(result.feature_rule())}</p>
{features}
<h2>Data quality</h2>
<p>{html.escape(result.quality_verdict().line())}.</p>
{quality}
<h2>Live metrics</h2>
<p>{html.escape(result.decay_verdict().line())}.</p>
{live}
<h2>Plots</h2>
{plots}
<p>The same numbers, machine-readable: <code>summary.json</code> beside this page.</p>
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
