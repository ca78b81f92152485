"""The pull-request report: one markdown document from the base and PR results (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flightdelay.comment import MARKER
from flightdelay.core.behaviour import Behaviour
from flightdelay.core.gate import Verdict, direction, extremes, judged_slices, slice_values
from flightdelay.core.significance import Interval
from flightdelay.settings import SliceRules

_SAME = 1e-9


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"test": {"roc_auc": 0.7}}`` -> ``{"test.roc_auc": 0.7}``, as ``dvc metrics`` and ``dvc params`` name keys."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class StageRun:
    stage: str
    status: str  # ran | skipped | restored | failed | not run


@dataclass(frozen=True)
class PipelineRun:
    stages: list[StageRun]
    seconds: float
    ok: bool


@dataclass(frozen=True)
class FileChange:
    path: str
    change: str  # added | modified | removed
    rows_before: int | None = None
    rows_after: int | None = None


@dataclass(frozen=True)
class DataChange:
    """What the raw data's `.dvc` files changed; ``files`` is empty when the manifests were not available."""

    md5_before: str | None
    md5_after: str | None
    files: list[FileChange] = field(default_factory=list)
    nfiles_before: int | None = None
    nfiles_after: int | None = None
    #: The ``.dvc`` files that changed: ``data.dvc``, and the database snapshots' beside the raw data.
    pointers: tuple[str, ...] = ("data.dvc",)


@dataclass(frozen=True)
class Comparison:
    """What the regression rules compare the PR's test scores with.

    When the PR scores other test rows than the base did (a data PR moves the test month), the base's
    committed metrics score other flights: ``paired`` is then the base's own model scored on the PR's test
    rows, so both sides score the same flights. ``missing`` says why that could not be done, and the
    regression rules are then left out (the absolute minimums still apply).
    """

    rows_moved: bool = False
    paired: dict[str, Any] | None = None
    missing: str | None = None

    def base_for_rules(self, base: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The base metrics the regression rules read; None leaves the rules out."""
        if base is None or not self.rows_moved:
            return base
        return None if self.paired is None else {**base, **self.paired}


@dataclass(frozen=True)
class ReportInput:
    base_ref: str
    base_sha: str
    head_sha: str
    pr_metrics: dict[str, Any] | None
    base_metrics: dict[str, Any] | None
    params: list[tuple[str, Any, Any]]
    data: DataChange | None
    verdict: Verdict
    validation: Mapping[str, Any] | None = None
    pipeline: PipelineRun | None = None
    pr_slices: Mapping[str, Any] | None = None
    base_slices: Mapping[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    run_url: str | None = None
    # Outputs the PR committed that differ from what CI reproduced: merged, they would break the release.
    uncommitted: list[str] = field(default_factory=list)
    min_slice_rows: int = 100  # report.min_slice_rows
    comparison: Comparison = field(default_factory=Comparison)
    slice_rules: SliceRules = field(default_factory=SliceRules)  # gate.slices
    behaviours: list[Behaviour] = field(default_factory=list)  # gate.robustness, measured on the PR's model
    # The paired bootstrap of the headline changes (flat names), or why there is none.
    significance: Mapping[str, Interval] | None = None
    significance_missing: str | None = None
    bootstrap_samples: int = 1000

    @property
    def passed(self) -> bool:
        return self.verdict.passed and (self.pipeline is None or self.pipeline.ok) and not self.uncommitted


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        # Counts arrive as floats from JSON metrics; show them as the whole numbers they are.
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4f}"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _judgement(metric: str, before: Any, after: Any) -> tuple[str, str]:
    """The change and whether it is better or worse for this metric."""
    if not isinstance(before, int | float) or not isinstance(after, int | float):
        return "—", ""
    delta = float(after) - float(before)
    if abs(delta) < _SAME:
        return "0", "same"
    sign = direction(metric)
    verdict = "" if sign == 0 else ("better" if delta * sign > 0 else "worse")
    return f"{delta:+.4f}", verdict


def _rules_compared(report: ReportInput) -> list[str]:
    """Which comparison the regression rules used: said under the verdict, where the reviewer reads it."""
    comparison = report.comparison
    if report.pr_metrics is None or report.base_metrics is None:
        return []
    if comparison.paired is not None:
        return ["- regression rules: the base's model and the PR's model, scored on the same (the PR's) test rows"]
    if comparison.rows_moved:
        return [f"- regression rules **not applied**: the test rows moved and {comparison.missing}; minimums applied"]
    return ["- regression rules: the base's committed metrics, on the same test rows"]


def _metrics(report: ReportInput) -> list[str]:
    lines = ["### Metrics", ""]
    pr, base = report.pr_metrics, report.base_metrics
    if pr is None:
        return [*lines, "The PR has no metrics: the pipeline did not finish (see **Pipeline**).", ""]
    if base is None:
        lines += ["The base has no metrics yet, so there is nothing to compare: the PR's metrics alone.", ""]
        lines += [*_scored({}, pr), "", "| metric | PR |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(pr.items()) if not _is_context(k)]
        return [*lines, ""]
    keys = sorted(k for k in set(pr) | set(base) if not _is_context(k))
    changed = [k for k in keys if k not in pr or k not in base or _judgement(k, base[k], pr[k])[1] != "same"]
    if not changed:
        lines += [f"No metric changed: all {len(keys)} are identical to the base.", ""]
    lines += [*_scored(base, pr, report.comparison), ""]
    if report.comparison.paired is not None:
        base = {**base, **report.comparison.paired}
    # The test month leads; the validation month (where the threshold is chosen) folds away.
    main = [k for k in keys if not k.startswith("valid.")]
    folded = [k for k in keys if k.startswith("valid.")]
    lines += _metric_table(main, base, pr)
    lines += _significance(report)
    if folded:
        lines += ["", "<details><summary>Validation-month metrics</summary>", ""]
        lines += [*_metric_table(folded, base, pr), "", "</details>"]
    return [*lines, ""]


def _significance(report: ReportInput) -> list[str]:
    """Whether each headline change is beyond the noise of the test rows, under the metric table."""
    if report.significance is None:
        why = report.significance_missing
        return ["", f"Is each change real? Not measured: {why}."] if why else []
    rows = _count((report.pr_metrics or {}).get("test.rows"))
    lines = [
        "",
        f"Is each change real? A paired bootstrap: {report.bootstrap_samples:,} resamples of the same {rows} test "
        "rows, each scored by both models.",
        "",
        "| metric | change | interval | |",
        "|---|---|---|---|",
    ]
    for metric, interval in sorted(report.significance.items()):
        verdict = "**significant**" if interval.significant else "within noise"
        lines.append(
            f"| {metric} | {interval.change:+.4f} | {interval.level:.0%}: {interval.low:+.4f} to {interval.high:+.4f} "
            f"| {verdict} |"
        )
    return lines


def _is_context(key: str) -> bool:
    """What was scored rather than how well: the months and the row counts are not metrics to diff."""
    return key.startswith("periods.") or key.endswith(".rows")


def _count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) and float(value).is_integer() else _fmt(value)


def _month(value: Any) -> str:
    """``201310`` (YYYYMM, as ``metrics.json`` records it) -> ``2013-10``."""
    if isinstance(value, int | float) and float(value).is_integer() and 100001 <= value <= 999912:
        return f"{int(value) // 100}-{int(value) % 100:02d}"
    return _fmt(value)


def _scored(base: Mapping[str, Any], pr: Mapping[str, Any], comparison: Comparison | None = None) -> list[str]:
    """Which month each split scored and on how many rows, base and PR; what the base column means."""
    comparison = comparison or Comparison()
    before_test = base.get("periods.test")
    lines = []
    for split, name in (("test", "Test month"), ("valid", "Validation month")):
        before = (base.get(f"periods.{split}"), base.get(f"{split}.rows"))
        after = (pr.get(f"periods.{split}"), pr.get(f"{split}.rows"))
        if after == (None, None):
            continue
        now = f"{_month(after[0])}, {_count(after[1])} rows"
        if before not in (after, (None, None)):
            now = f"{_month(before[0])}, {_count(before[1])} rows in the base → {now} in the PR"
        lines.append(f"- {name}: {now}")
    if comparison.paired is not None:
        auc = base.get("test.roc_auc")
        own = f" (its own report: ROC AUC {_fmt(auc)} on {_month(before_test)})" if auc is not None else ""
        lines.append(
            "- the test rows moved, so the base column is **the base's model scored on the PR's test rows**"
            f"{own}: both columns score the same flights"
        )
    elif comparison.rows_moved:
        lines.append(f"- the test rows moved and the base's model could not score them ({comparison.missing}):")
        lines.append("  the two columns score different flights")
    return lines


def _metric_table(keys: list[str], base: Mapping[str, Any], pr: Mapping[str, Any]) -> list[str]:
    lines = ["| metric | base | PR | change | |", "|---|---|---|---|---|"]
    for key in keys:
        if key not in pr:
            lines.append(f"| {key} | {_fmt(base[key])} | — | removed | |")
        elif key not in base:
            lines.append(f"| {key} | — | {_fmt(pr[key])} | new | |")
        else:
            change, verdict = _judgement(key, base[key], pr[key])
            mark = {"better": "🟢 better", "worse": "🔴 worse"}.get(verdict, "")
            lines.append(f"| {key} | {_fmt(base[key])} | {_fmt(pr[key])} | {change} | {mark} |")
    return lines


def _slices(report: ReportInput) -> list[str]:
    if not report.pr_slices:
        return []
    base = report.base_slices or {}
    least = report.min_slice_rows
    lines = [
        f"<details><summary>Slice metrics ({', '.join(report.pr_slices)}): ROC AUC and rows</summary>",
        "",
        f"A slice with fewer than {least:,} test rows in either column shows no ROC AUC: too few rows to judge it."
        + (
            " The test rows moved: the base columns are the base's own test month."
            if report.comparison.rows_moved
            else ""
        ),
        "",
        "| slice | rows base | rows PR | ROC AUC base | ROC AUC PR | change |",
        "|---|---|---|---|---|---|",
    ]
    for dimension, groups in report.pr_slices.items():
        for group, scores in sorted(groups.items()):
            before = base.get(dimension, {}).get(group, {})
            rows = before.get("rows"), scores.get("rows")
            if any(isinstance(n, int | float) and n < least for n in rows):
                auc = ("—", "—", "too few rows")
            else:
                change, _ = _judgement("roc_auc", before.get("roc_auc"), scores.get("roc_auc"))
                auc = (_fmt(before.get("roc_auc")), _fmt(scores.get("roc_auc")), change)
            lines.append(f"| {dimension} {group} | {_count(rows[0])} | {_count(rows[1])} | {' | '.join(auc)} |")
    return [*lines, "", "</details>", ""]


def _fairness(report: ReportInput) -> list[str]:
    """The slice rules' view of each dimension (worst, best, gap) and the invariants measured on the PR's model."""
    rules = report.slice_rules
    metrics = sorted(set(rules.minimum) | set(rules.max_gap))
    lines: list[str] = []
    if report.pr_slices and metrics:
        lines += [
            f"Slices with at least {rules.min_rows:,} test rows (`gate.slices`):",
            "",
            "| slice | metric | worst | best | gap | rule |",
            "|---|---|---|---|---|---|",
        ]
        for dimension, groups in report.pr_slices.items():
            judged = judged_slices(rules, groups)
            for metric in metrics:
                values = slice_values(judged, metric)
                if not values:
                    continue
                worst, best = extremes(values, metric)
                rule = [f"floor {rules.minimum[metric]:g}"] if metric in rules.minimum else []
                rule += [f"gap ≤ {rules.max_gap[metric]:g}"] if metric in rules.max_gap else []
                lines.append(
                    f"| {dimension} ({len(values)} of {len(groups)}) | {metric} | {worst} {values[worst]:.4f} | "
                    f"{best} {values[best]:.4f} | {abs(values[best] - values[worst]):.4f} | {', '.join(rule)} |"
                )
        lines.append("")
    if report.behaviours:
        lines += [
            "The problem's invariants on the PR's model (`gate.robustness`):",
            "",
            "| when | mean change of the probability | rows it lowered | rule |",
            "|---|---|---|---|",
        ]
        for measured in report.behaviours:
            invariant = measured.invariant
            lines.append(
                f"| {invariant.name} | {measured.mean_rise:+.4f} | {measured.share_lower:.1%} of {measured.rows:,} | "
                f"rise ≥ {invariant.min_mean_rise:g}, lowered ≤ {invariant.max_share_lower:.0%} |"
            )
        lines.append("")
    return ["### Fairness and robustness", "", *lines] if lines else []


def _params(report: ReportInput) -> list[str]:
    lines = ["### Params", ""]
    if not report.params:
        return [*lines, "No params changed.", ""]
    lines += ["| param | base | PR |", "|---|---|---|"]
    lines += [f"| {key} | {_fmt(before)} | {_fmt(after)} |" for key, before, after in report.params]
    return [*lines, ""]


def _data(report: ReportInput) -> list[str]:
    lines = ["### Data", ""]
    data = report.data
    if data is None:
        return [*lines, "The raw data is unchanged (`data.dvc` and any database snapshot's `.dvc` file).", ""]
    lines.append(
        f"{', '.join(f'`{p}`' for p in data.pointers)} changed: {_fmt(data.nfiles_before)} → "
        f"{_fmt(data.nfiles_after)} files "
        f"(`{data.md5_before}` → `{data.md5_after}`)."
    )
    lines.append("")
    if not data.files:
        return [*lines, "The file lists of the two versions were not available, so no per-file changes.", ""]
    lines += ["| file | change | rows base | rows PR |", "|---|---|---|---|"]
    lines += [
        f"| {f.path} | {f.change} | {_count(f.rows_before)} | {_count(f.rows_after)} |"
        for f in sorted(data.files, key=lambda f: f.path)
    ]
    return [*lines, ""]


def _validation(report: ReportInput) -> list[str]:
    lines = ["### Validation", ""]
    summary = report.validation
    if summary is None:
        return [*lines, "No validation report: the pipeline stopped before validate.", ""]
    errors, warnings = summary.get("errors", []), summary.get("warnings", [])
    lines.append(f"{summary.get('rows', 0):,} rows, {len(errors)} failing check(s), {len(warnings)} warning(s).")
    lines.append("")
    if errors or warnings:
        lines += ["| | column | check | rows |", "|---|---|---|---|"]
        lines += [f"| ❌ error | {e['column']} | {e['check']} | {e['failures']:,} |" for e in errors]
        lines += [f"| ⚠️ warning | {w['column']} | {w['check']} | {w['failures']:,} |" for w in warnings]
        lines.append("")
    return lines


def _pipeline(report: ReportInput) -> list[str]:
    lines = ["### Pipeline", ""]
    run = report.pipeline
    if run is None:
        return [*lines, "Not reproduced in this run.", ""]
    state = "finished" if run.ok else "**failed**"
    lines += [f"`dvc repro` {state} in {run.seconds:.0f} s.", "", "| stage | |", "|---|---|"]
    lines += [f"| {s.stage} | {s.status} |" for s in run.stages]
    return [*lines, ""]


def render(report: ReportInput) -> str:
    """The whole comment; the first line is the hidden marker that finds it again."""
    verdict = report.verdict
    ok = report.passed
    head = "✅ Quality gate passed" if ok else "❌ Quality gate failed"
    lines = [MARKER, f"## {head}", ""]
    if report.pipeline is not None and not report.pipeline.ok:
        failed = [s.stage for s in report.pipeline.stages if s.status == "failed"]
        lines.append(f"- the pipeline failed at stage **{failed[0] if failed else 'unknown'}**")
    if report.uncommitted:
        files = ", ".join(f"`{name}`" for name in report.uncommitted)
        tops = " ".join(sorted({name.split("/")[0] for name in report.uncommitted}))
        lines.append(
            f"- the committed pipeline outputs differ from what CI reproduced ({files}): run `dvc repro` and "
            f"commit them (`git add {tops} && git commit`), or the release after the merge finds a dirty tree"
        )
    lines += [f"- {failure}" for failure in verdict.failures]
    if ok:
        lines.append(f"- {verdict.checked} gate rule(s) checked, all passed")
    lines += _rules_compared(report)
    loosened = [(k, before, after) for k, before, after in report.params if k.startswith("gate.")]
    if loosened:
        changes = ", ".join(f"`{k}` {_fmt(before)} → {_fmt(after)}" for k, before, after in loosened)
        lines.append(f"- ⚠️ **this PR changes the gate itself**: {changes}; the verdict above applies the PR's rules")
    lines += ["", f"Head `{report.head_sha[:10]}` against base `{report.base_ref}` (`{report.base_sha[:10]}`).", ""]
    lines += _metrics(report) + _fairness(report) + _slices(report) + _params(report) + _data(report)
    lines += _validation(report) + _pipeline(report)
    if report.plots:
        where = f"in the [run's artifacts]({report.run_url})" if report.run_url else "next to this report"
        lines += ["### Plots", "", f"Base and PR curves, {where}: " + ", ".join(f"`{p}`" for p in report.plots), ""]
    return "\n".join(lines).rstrip() + "\n"
