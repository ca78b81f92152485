from __future__ import annotations

from flightdelay.pr_report import params_diff, parse_repro

# What dvc 3 prints, stage by stage, for skipped, restored, run and failed stages.
OUTPUT = """\
'data.dvc' didn't change, skipping
Stage 'ingest' didn't change, skipping
Stage 'validate' is cached - skipping run, checking out outputs
Running stage 'featurize':
> python -m flightdelay.stages.featurize
ERROR: failed to reproduce 'featurize': failed to run: python -m flightdelay.stages.featurize, exited with 1
"""


def test_parse_repro_reads_each_stage() -> None:
    run = parse_repro(OUTPUT, ok=False, seconds=3.0)
    assert {s.stage: s.status for s in run.stages} == {
        "ingest": "skipped",
        "validate": "restored from run-cache",
        "featurize": "failed",
        "train": "not run",
        "evaluate": "not run",
    }
    assert not run.ok


def test_params_diff_lists_changed_added_and_removed_keys() -> None:
    base = {"train": {"max_iter": 300, "old": 1}, "split": {"test_months": 1}}
    pr = {"train": {"max_iter": 150, "new": 2}, "split": {"test_months": 1}}
    assert params_diff(base, pr) == [
        ("train.max_iter", 300, 150),
        ("train.new", None, 2),
        ("train.old", 1, None),
    ]
    assert params_diff(None, {"a": 1}) == [("a", None, 1)]
