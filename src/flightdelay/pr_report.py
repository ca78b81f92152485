"""The pull-request report job: reproduce, compare with the base, judge, render.

``nox -s pr-report -- --base <rev>`` runs it locally exactly as CI does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from flightdelay import settings
from flightdelay.core import gate, report
from flightdelay.core.behaviour import Behaviour
from flightdelay.core.significance import Interval
from flightdelay.io import dvc, git, plots

STAGES = ("ingest", "validate", "featurize", "train", "evaluate")
_STATUS = (
    (re.compile(r"Running stage '([\w-]+)'"), "ran"),
    (re.compile(r"Stage '([\w-]+)' didn't change, skipping"), "skipped"),
    (re.compile(r"Stage '([\w-]+)' is cached - skipping run"), "restored from run-cache"),
    (re.compile(r"failed to reproduce '([\w-]+)'"), "failed"),
)


def parse_repro(output: str, ok: bool, seconds: float) -> report.PipelineRun:
    """Which stage did what, from ``dvc repro``'s own messages."""
    status: dict[str, str] = {}
    for pattern, label in _STATUS:
        for match in pattern.finditer(output):
            status[match.group(1)] = label
    stages = [report.StageRun(s, status.get(s, "not run")) for s in STAGES]
    return report.PipelineRun(stages, seconds, ok)


def repro(root: Path, record: Path) -> report.PipelineRun:
    """``dvc repro`` with its output passed through, recorded to ``record`` as JSON."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line)
    ok = process.wait() == 0
    run = parse_repro("".join(lines), ok, time.monotonic() - started)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(
        json.dumps(
            {"ok": run.ok, "seconds": round(run.seconds, 1), "stages": {s.stage: s.status for s in run.stages}},
            indent=2,
        )
        + "\n"
    )
    return run


def load_pipeline(record: Path) -> report.PipelineRun | None:
    if not record.is_file():
        return None
    data = json.loads(record.read_text())
    return report.PipelineRun([report.StageRun(k, v) for k, v in data["stages"].items()], data["seconds"], data["ok"])


def _json_at(root: Path, rev: str | None, path: Path) -> Any:
    if rev is None:
        full = root / path
        return json.loads(full.read_text()) if full.is_file() else None
    text = git.show(root, rev, path.as_posix())
    return json.loads(text) if text else None


def _yaml_at(root: Path, rev: str | None, path: Path) -> Any:
    text = (root / path).read_text() if rev is None else git.show(root, rev, path.as_posix())
    return yaml.safe_load(text) if text else None


def params_diff(base: dict[str, Any] | None, pr: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    before, after = report.flatten(base or {}), report.flatten(pr)
    return [(k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def _recorded(root: Path, rev: str | None, pointers: list[Path]) -> dict[str, dict[str, Any]]:
    """Each output the ``.dvc`` files record at ``rev`` (None: the workspace), by its path under the raw data."""
    found: dict[str, dict[str, Any]] = {}
    for pointer in pointers:
        if rev is None and not (root / pointer).is_file():
            continue  # removed by the PR
        for out in ((_yaml_at(root, rev, pointer) or {}).get("outs")) or []:
            found[(pointer.parent / str(out["path"])).as_posix()] = out
    return found


def data_diff(root: Path, base: str, pointer: Path) -> report.DataChange | None:
    """Files added, modified and removed in the raw data: the directories ``pointer`` tracks and the database
    snapshots beside them, with rows per file."""
    raw = dvc.tracked_path(root, pointer)
    # The snapshots' .dvc files of both sides: one the PR removed is compared too.
    listed = git.git(root, "ls-tree", "--name-only", base, "--", f"{raw.relative_to(root).as_posix()}/")
    at_base = {Path(name) for name in listed.split() if name.endswith(".dvc")}
    pointers = [pointer, *sorted(set(dvc.snapshots(root, raw)) | at_base - {pointer})]
    sides = {p: (_recorded(root, base, [p]), _recorded(root, None, [p])) for p in pointers}  # each read once
    before = {path: out for side, _ in sides.values() for path, out in side.items()}
    after = {path: out for _, side in sides.values() for path, out in side.items()}
    md5s = [{path: out.get("md5") for path, out in side.items()} for side in (before, after)]
    if md5s[0] == md5s[1]:
        return None
    old: dict[str, str] | None = _listing(root, before)
    if old is None:
        try:
            dvc.cache_revision(root, base, pointer)
        except (dvc.DvcError, subprocess.CalledProcessError) as exc:
            print(f"pr-report: no per-file data diff, the base data is not available: {exc}", file=sys.stderr)
        old = _listing(root, before)
    new = _listing(root, after)
    files: list[report.FileChange] = []
    if old is not None and new is not None:
        for path in sorted(set(old) | set(new)):
            if old.get(path) == new.get(path):
                continue
            change = "added" if path not in old else "removed" if path not in new else "modified"
            rows = [
                dvc.count_rows(root, m) if m and path.endswith(".csv") else None for m in (old.get(path), new.get(path))
            ]
            files.append(report.FileChange(path, change, rows[0], rows[1]))
    changed = sorted(p.as_posix() for p, (was, now) in sides.items() if was != now)
    return report.DataChange(
        ",".join(str(m) for m in md5s[0].values()),
        ",".join(str(m) for m in md5s[1].values()),
        files,
        _nfiles(before),
        _nfiles(after),
        tuple(changed),
    )


def _listing(root: Path, recorded: dict[str, dict[str, Any]]) -> dict[str, str] | None:
    """``{path under the raw data: md5}`` of every file the outputs hold; None when a listing is not cached."""
    raw = os.path.commonpath(list(recorded)) if len(recorded) > 1 else next(iter(recorded), "")
    files: dict[str, str] = {}
    for path, out in recorded.items():
        md5 = str(out.get("md5") or "")
        prefix = Path(os.path.relpath(path, raw)).as_posix() if len(recorded) > 1 else ""
        if md5.endswith(".dir"):
            listed = dvc.manifest(root, md5)
            if listed is None:
                return None
            files |= {f"{prefix}/{name}" if prefix else name: m for name, m in listed.items()}
        elif md5:
            files[prefix or Path(path).name] = md5
    return files


def _nfiles(recorded: dict[str, dict[str, Any]]) -> int | None:
    """How many files the outputs hold: a directory's recorded count, one for a file; None if any is unknown."""
    total = 0
    for out in recorded.values():
        count = out.get("nfiles") if str(out.get("md5", "")).endswith(".dir") else 1
        if count is None:
            return None
        total += int(count)
    return total if recorded else None


class Scoring:
    """The PR's test rows, its model and the base's model's probabilities on those rows, each loaded once:
    the like-with-like comparison, the bootstrap and the invariants all read them.

    The models are the ones ``dvc.lock`` records (the base's from the cache or the remote), checked against
    that record before they are loaded.
    """

    def __init__(self, root: Path, params: settings.Params, base_sha: str) -> None:
        self.root, self.params, self.base_sha = root, params, base_sha

    @cached_property
    def test(self) -> Any:
        from flightdelay.io.files import read_parquet

        return read_parquet(self.root / self.params.paths.test)

    @cached_property
    def labels(self) -> Any:
        from flightdelay.problem import PROBLEM

        return self.test[PROBLEM.label].to_numpy()

    @cached_property
    def pr_model(self) -> Any:
        return dvc.load_model(self.root, self.params.paths.model)  # DvcError unless dvc.lock records its bytes

    @cached_property
    def pr_proba(self) -> Any:
        from flightdelay.stages.evaluate import predict

        return predict(self.pr_model, self.test)

    @cached_property
    def _base(self) -> tuple[Any, str | None]:
        """The base model's probabilities on the PR's rows, or why there are none."""
        import joblib

        from flightdelay.stages.evaluate import predict

        try:
            model = joblib.load(dvc.revision_output(self.root, self.base_sha, "train", self.params.paths.model))
        except dvc.DvcError as exc:
            return None, f"the base's model is not available ({exc})"
        try:
            return predict(model, self.test), None
        except (KeyError, ValueError, TypeError) as exc:  # the PR changed the features the model reads
            return None, f"the base's model cannot score the PR's rows ({exc})"

    def base_proba(self) -> Any:
        """The base model's probabilities on the PR's test rows; :class:`ValueError` says why there are none."""
        proba, missing = self._base
        if missing is not None:
            raise ValueError(missing)
        return proba


def compare(root: Path, params: settings.Params, base_tree: Any, scoring: Scoring) -> report.Comparison:
    """Like with like: when the PR's test rows are not the base's, the base's model scored on the PR's rows,
    at the base's own threshold."""
    try:
        moved = dvc.recorded_md5(root, "featurize", params.paths.test, scoring.base_sha) != dvc.recorded_md5(
            root, "featurize", params.paths.test
        )
    except dvc.DvcError:
        return report.Comparison()  # a base without a pipeline record has no metrics to compare either
    if not moved:
        return report.Comparison()
    threshold = (base_tree or {}).get("threshold")
    if not isinstance(threshold, int | float):
        return report.Comparison(rows_moved=True, missing="the base's metrics record no threshold")
    from flightdelay.core import metrics

    try:
        proba = scoring.base_proba()
    except ValueError as exc:
        return report.Comparison(rows_moved=True, missing=str(exc))
    scores = metrics.rounded(metrics.test_scores(scoring.labels, proba, threshold, params.evaluate.costs))
    return report.Comparison(rows_moved=True, paired={f"test.{k}": v for k, v in scores.items()})


def unpushed_report(missing: dict[Path, list[str]], remote: str) -> str:
    """The PR comment when the PR records data the DVC remote does not hold: nothing was reproduced."""
    from flightdelay.comment import MARKER

    lines = [MARKER, "## ❌ Quality gate failed", ""]
    for pointer, files in missing.items():
        shown = ", ".join(f"`{f}`" for f in files[:20]) + (f" and {len(files) - 20} more" if len(files) > 20 else "")
        lines.append(
            f"- `{pointer}` records data the DVC remote `{remote}` does not have: {shown}. Push it from the "
            f"machine that has it (`dvc push {pointer}`), then push a commit to run this check again"
        )
    return "\n".join([*lines, "", "Nothing was reproduced: the pipeline would run on data nobody else can get.", ""])


def significance(params: settings.Params, scoring: Scoring) -> dict[str, Interval]:
    """The paired bootstrap of the headline metrics: the base's model and the PR's, on the PR's test rows;
    :class:`ValueError` says why the base's side cannot be had."""
    from flightdelay.core.significance import METRICS, paired_bootstrap

    try:
        pr = scoring.pr_proba
    except dvc.DvcError as exc:
        raise ValueError(f"the PR's model is not the one dvc.lock records ({exc})") from exc
    found = paired_bootstrap(
        scoring.labels,
        scoring.base_proba(),
        pr,
        samples=params.report.bootstrap_samples,
        level=params.report.confidence,
    )
    return {f"test.{metric}": found[metric] for metric in METRICS}


def behaviours(root: Path, params: settings.Params, scoring: Scoring) -> list[Behaviour]:
    """The problem's invariants measured on the PR's model (``gate.robustness``), on the test month's rows."""
    if not params.gate.robustness:
        return []
    from flightdelay.core import behaviour
    from flightdelay.io.files import read_parquet
    from flightdelay.problem import PROBLEM
    from flightdelay.stages.evaluate import predict

    model = scoring.pr_model  # the bytes dvc.lock records, or DvcError
    joined = read_parquet(root / params.paths.joined)
    rows = joined[PROBLEM.period(joined) == PROBLEM.period(scoring.test).max()]
    return behaviour.measure(lambda r: predict(model, PROBLEM.features_of(r)), rows, PROBLEM.invariants())


def build(
    root: Path,
    params: settings.Params,
    base: str,
    out: Path,
    *,
    pipeline: report.PipelineRun | None,
    run_url: str | None = None,
    pointer: Path = Path("data.dvc"),
) -> tuple[str, bool]:
    """Render the report for the working tree against the merge base of ``base``; return it and the verdict."""
    base_sha = git.merge_base(root, base)
    paths = params.paths
    pr_metrics_tree = _json_at(root, None, paths.metrics) if pipeline is None or pipeline.ok else None
    base_metrics_tree = _json_at(root, base_sha, paths.metrics)
    pr_metrics = report.flatten(pr_metrics_tree) if pr_metrics_tree else None
    base_metrics = report.flatten(base_metrics_tree) if base_metrics_tree else None
    scoring = Scoring(root, params, base_sha)
    comparison = compare(root, params, base_metrics_tree, scoring) if pr_metrics and base_metrics else None
    comparison = comparison or report.Comparison()
    pr_slices = _json_at(root, None, paths.slices) if pr_metrics else None
    measured: list[Behaviour] = []
    unmeasured = []
    if pr_metrics:
        try:
            measured = behaviours(root, params, scoring)
        except (dvc.DvcError, ValueError, KeyError) as exc:
            unmeasured.append(f"robustness: the PR's model could not be checked against the invariants: {exc}")
    intervals, missing = None, None
    if pr_metrics and base_metrics:
        try:
            intervals = significance(params, scoring)
        except ValueError as exc:
            missing = str(exc)
    verdict = gate.judge(
        params.gate,
        pr_metrics or {},
        comparison.base_for_rules(base_metrics),
        slices=(pr_slices or {}) if pr_metrics else None,
        behaviours=measured,
        significance=intervals,
    )
    verdict = gate.Verdict(verdict.failures + unmeasured, verdict.checked + len(unmeasured))
    pr_curves = {n: _json_at(root, None, paths.plots / f"{n}.json") for n in plots.CURVES}
    base_curves = {n: _json_at(root, base_sha, paths.plots / f"{n}.json") for n in plots.CURVES}
    written = (
        plots.render(
            out / "plots",
            {k: v for k, v in pr_curves.items() if v},
            {k: v for k, v in base_curves.items() if v},
        )
        if pr_metrics
        else []
    )
    validate_ran = pipeline is None or next(s for s in pipeline.stages if s.stage == "validate").status != "not run"
    validation = _json_at(root, None, paths.validation_report) if validate_ran else None
    inputs = report.ReportInput(
        base_ref=base,
        base_sha=base_sha,
        head_sha=git.rev_parse(root, "HEAD"),
        pr_metrics=pr_metrics,
        base_metrics=base_metrics,
        params=params_diff(_yaml_at(root, base_sha, settings.PARAMS_FILE), _yaml_at(root, None, settings.PARAMS_FILE)),
        data=data_diff(root, base_sha, pointer),
        verdict=verdict,
        validation=validation,
        pipeline=pipeline,
        pr_slices=pr_slices,
        base_slices=_json_at(root, base_sha, paths.slices),
        plots=[f"plots/{name}" for name in written],
        run_url=run_url,
        uncommitted=git.changed(root, ["dvc.lock", *params.paths.committed])
        if pipeline is not None and pipeline.ok
        else [],
        min_slice_rows=params.report.min_slice_rows,
        comparison=comparison,
        slice_rules=params.gate.slices,
        behaviours=measured,
        significance=intervals,
        significance_missing=missing,
        bootstrap_samples=params.report.bootstrap_samples,
    )
    document = report.render(inputs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(document)
    return document, inputs.passed
