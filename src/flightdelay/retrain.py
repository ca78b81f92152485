"""Continuous training: when the monitor says so, propose a retrained model through the reviewed PR flow.

The retraining PR carries the new ``data.dvc`` (the next month of data) and the pipeline reproduced on it
(``dvc.lock`` and ``reports/``), as any data PR must: the PR loop then reproduces, reports and gates it
(and fails when its committed outputs differ from the reproduction), and a merge goes through the release
loop with a clean tree. One issue, labelled
``model-monitor``, carries the monitor's latest digest and is updated rather than opened again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flightdelay.interface import SampleError, period_label
from flightdelay.io import dvc, git
from flightdelay.io.drift_report import MARKER
from flightdelay.io.github import Client

LABEL = "model-monitor"
Say = Callable[[str], None]


class RetrainError(RuntimeError):
    """The retraining PR could not be prepared: a dirty tree, a git or DVC failure."""


@dataclass(frozen=True)
class Proposal:
    branch: str
    pull: int
    pull_url: str
    issue: int


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RetrainError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def later_months(root: Path, raw: Path) -> list[int]:
    """The months (YYYYMM) of the sample after the data's latest, in order."""
    from flightdelay.problem import PROBLEM

    present = PROBLEM.periods_present(root / raw)
    return [p for p in PROBLEM.sample_periods() if not present or p > max(present)]


def next_month(root: Path, raw: Path) -> int | None:
    """The first month (YYYYMM) of the sample after the data's latest, or None when the sample has no later one."""
    later = later_months(root, raw)
    return later[0] if later else None


def propose(
    root: Path,
    client: Client,
    month: int,  # YYYYMM
    digest: str,
    say: Say,
    *,
    pointer: Path = Path("data.dvc"),
    outputs: Sequence[Path] = (),
    base: str = "main",
    remote: str = "origin",
) -> Proposal:
    """Branch, add the month to ``data.dvc``, reproduce, commit it with ``dvc.lock`` and the git-tracked
    ``outputs``, push, and open or update the PR and the issue."""
    if _git(root, "status", "--porcelain", "--untracked-files=no"):
        raise RetrainError("the working tree has uncommitted changes; the retraining PR must carry the new data alone")
    name = period_label(month)
    branch = f"retrain/{name}"
    start = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if start == "HEAD":  # detached: come back to the commit
        start = _git(root, "rev-parse", "HEAD")
    _git(root, "checkout", "-B", branch)
    try:
        try:
            dvc.add_month(root, pointer, month)
        except (dvc.DvcError, SampleError) as exc:
            raise RetrainError(str(exc)) from exc
        say(f"reproducing the pipeline with {name} (dvc repro)")
        try:
            dvc.run("repro", cwd=root)
        except dvc.DvcError as exc:
            raise RetrainError(f"the pipeline failed on the data with {name}; nothing was pushed:\n{exc}") from exc
        if dvc.default_remote(root):
            # The new month for the PR's CI, the outputs and run-cache for the release after the merge.
            dvc.run("push", cwd=root)
            dvc.run("push", "--run-cache", cwd=root)
        try:
            changed = [str(pointer), *git.changed(root, ["dvc.lock", *outputs])]
        except git.GitError as exc:
            raise RetrainError(str(exc)) from exc
        _git(root, "add", "--", *changed)
        _git(root, "commit", "-m", f"data: add {name} for retraining (the model monitor flagged drift)")
        _git(root, "push", "--force", remote, f"{branch}:{branch}")  # the bot owns the branch
    finally:
        _git(root, "reset", "--quiet", "--hard")  # a failed repro leaves outputs changed; git's side first
        _git(root, "checkout", "--quiet", start)
        # The month's files and the retrained outputs stay out of git: check the recorded ones out again.
        dvc.run("checkout", "--force", cwd=root)
    title = f"Retrain on {name}: the model monitor flagged drift"
    body = (
        f"The scheduled model monitor flagged the data of {name}; this PR adds it to `data.dvc` so the PR loop "
        f"retrains, reports and gates it. Merging it releases the retrained model through the release loop.\n\n"
        f"{digest}"
    )
    action, number, url = client.upsert_pull(branch, base, title, body)
    say(f"{action} PR #{number} from {branch}: {url}")
    issue_body = f"{MARKER}\nRetraining proposed in #{number}.\n\n{digest.removeprefix(MARKER).lstrip()}"
    issue_action, issue = client.upsert_issue("Model monitor: drift or decay detected", issue_body, LABEL, MARKER)
    say(f"{issue_action} issue #{issue}")
    return Proposal(branch, number, url, issue)


def report_variants(client: Client, digest: str, say: Say) -> int:
    """Open or update the monitor issue with a digest whose shadow or A/B verdict calls for a decision.

    The same issue (label and marker) as a retraining proposal: one place where the monitor asks for action.
    """
    body = f"{MARKER}\nA deployment variant needs a decision (see the Shadow or A/B test verdict).\n\n"
    body += digest.removeprefix(MARKER).lstrip()
    action, number = client.upsert_issue("Model monitor: a deployment variant needs a decision", body, LABEL, MARKER)
    say(f"{action} issue #{number}")
    return number
