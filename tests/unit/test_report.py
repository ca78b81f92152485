from __future__ import annotations

from flightdelay.comment import MARKER
from flightdelay.core import report
from flightdelay.core.gate import Verdict

BASE = {"test.roc_auc": 0.70, "test.log_loss": 0.45, "periods.test": 201310}


def make(**changes: object) -> str:
    fields: dict[str, object] = {
        "base_ref": "origin/main",
        "base_sha": "a" * 40,
        "head_sha": "b" * 40,
        "pr_metrics": {"test.roc_auc": 0.72, "test.log_loss": 0.46, "periods.test": 201310},
        "base_metrics": BASE,
        "params": [],
        "data": None,
        "verdict": Verdict(checked=2),
    } | changes
    return report.render(report.ReportInput(**fields))  # type: ignore[arg-type]


def test_marker_first_and_verdict_heads_the_report() -> None:
    lines = make().splitlines()
    assert lines[0] == MARKER
    assert lines[1] == "## ✅ Quality gate passed"


def test_direction_per_metric() -> None:
    text = make()
    assert "| test.roc_auc | 0.7000 | 0.7200 | +0.0200 | 🟢 better |" in text
    assert "| test.log_loss | 0.4500 | 0.4600 | +0.0100 | 🔴 worse |" in text


def test_failed_gate_lists_each_failure() -> None:
    text = make(verdict=Verdict(failures=["test.roc_auc = 0.6 is below the minimum 0.7"], checked=1))
    assert text.splitlines()[1] == "## ❌ Quality gate failed"
    assert "- test.roc_auc = 0.6 is below the minimum 0.7" in text


def test_base_without_metrics_is_a_sentence() -> None:
    text = make(base_metrics=None)
    assert "The base has no metrics yet" in text
    assert "| test.roc_auc | 0.7200 |" in text


def test_nothing_changed_is_a_sentence() -> None:
    assert "No metric changed: all 2 are identical to the base." in make(pr_metrics=dict(BASE))


def test_metric_that_appears_and_disappears() -> None:
    text = make(pr_metrics={"test.roc_auc": 0.7, "test.f1": 0.4, "periods.test": 201310})
    assert "| test.f1 | — | 0.4000 | new | |" in text
    assert "| test.log_loss | 0.4500 | — | removed | |" in text


def test_moved_test_month_is_called_out_and_not_diffed() -> None:
    text = make(
        base_metrics=BASE | {"test.rows": 28889.0},
        pr_metrics={"test.roc_auc": 0.7, "test.log_loss": 0.45, "periods.test": 201311, "test.rows": 27268.0},
        comparison=report.Comparison(rows_moved=True, missing="the base's model is not available"),
    )
    assert "- Test month: 2013-10, 28,889 rows in the base → 2013-11, 27,268 rows in the PR" in text
    assert "  the two columns score different flights" in text
    assert "| periods.test |" not in text  # a month and a count are what was scored, not metrics to diff
    assert "| test.rows |" not in text
    assert "+1.0000" not in text


def test_params_and_data_sections() -> None:
    data = report.DataChange("x.dir", "y.dir", [report.FileChange("flights/2013-11.csv", "added", None, 27268)], 23, 25)
    text = make(params=[("train.hist_gradient_boosting.max_iter", 300, 50)], data=data)
    assert "| train.hist_gradient_boosting.max_iter | 300 | 50 |" in text
    assert "`data.dvc` changed: 23 → 25 files" in text
    assert "| flights/2013-11.csv | added | — | 27,268 |" in text
    assert "No params changed." in make()
    assert "The raw data is unchanged" in make()


def test_a_refreshed_database_snapshot_is_named_by_its_dvc_file() -> None:
    files = [report.FileChange("airlines.csv", "modified", 16, 17)]
    data = report.DataChange("a.dir,b.dir,c", "a.dir,b.dir,d", files, 23, 23, ("data/raw/airlines.csv.dvc",))
    text = make(data=data)
    assert "`data/raw/airlines.csv.dvc` changed: 23 → 23 files" in text
    assert "| airlines.csv | modified | 16 | 17 |" in text
    assert "`data.dvc` changed" not in text


def test_failed_pipeline_names_the_stage() -> None:
    run = report.PipelineRun(
        [report.StageRun("ingest", "ran"), report.StageRun("validate", "failed"), report.StageRun("train", "not run")],
        12.0,
        ok=False,
    )
    text = make(pipeline=run, pr_metrics=None)
    assert "- the pipeline failed at stage **validate**" in text
    assert "| validate | failed |" in text
    assert "The PR has no metrics" in text


def test_slices_fold_away_and_small_ones_show_no_auc() -> None:
    base = {"carrier": {"AA": {"roc_auc": 0.7, "rows": 2715.0}, "OO": {"roc_auc": 0.61, "rows": 120.0}}}
    pr = {"carrier": {"AA": {"roc_auc": 0.72, "rows": 2698.0}, "OO": {"roc_auc": 0.0, "rows": 5.0}}}
    text = make(pr_slices=pr, base_slices=base, min_slice_rows=100)
    assert "<details><summary>Slice metrics (carrier)" in text
    assert "| carrier AA | 2,715 | 2,698 | 0.7000 | 0.7200 | +0.0200 |" in text
    assert "| carrier OO | 120 | 5 | — | — | too few rows |" in text
    assert "fewer than 100 test rows" in text
    assert "the base columns are the base's own test month" not in text
    moved = make(pr_slices=pr, base_slices=base, comparison=report.Comparison(rows_moved=True, missing="gone"))
    assert "The test rows moved: the base columns are the base's own test month." in moved


def test_flatten_names_like_dvc() -> None:
    assert report.flatten({"test": {"roc_auc": 0.7}, "threshold": 0.4}) == {"test.roc_auc": 0.7, "threshold": 0.4}


def test_counts_read_as_whole_numbers_and_validation_month_folds() -> None:
    text = make(
        pr_metrics={"test.rows": 28889.0, "valid.roc_auc": 0.75, "periods.test": 201310},
        base_metrics={"test.rows": 28889.0, "valid.roc_auc": 0.74, "periods.test": 201310},
    )
    assert "- Test month: 2013-10, 28,889 rows" in text
    folded = text.split("<details><summary>Validation-month metrics</summary>")[1]
    assert "| valid.roc_auc | 0.7400 | 0.7500 | +0.0100 | 🟢 better |" in folded


def test_moved_rows_with_the_base_model_rescored_compare_like_with_like() -> None:
    paired = {"test.roc_auc": 0.69, "test.log_loss": 0.47}
    comparison = report.Comparison(rows_moved=True, paired=paired)
    text = make(
        base_metrics=BASE | {"test.rows": 28889.0},
        pr_metrics={"test.roc_auc": 0.7, "test.log_loss": 0.45, "periods.test": 201311, "test.rows": 27268.0},
        comparison=comparison,
    )
    assert "- regression rules: the base's model and the PR's model, scored on the same (the PR's) test rows" in text
    assert "**the base's model scored on the PR's test rows** (its own report: ROC AUC 0.7000 on 2013-10)" in text
    assert "| test.roc_auc | 0.6900 | 0.7000 | +0.0100 | 🟢 better |" in text
    assert comparison.base_for_rules(BASE) == BASE | paired


def test_moved_rows_without_the_base_model_leave_the_regression_rules_out() -> None:
    comparison = report.Comparison(rows_moved=True, missing="the base's model is not available (gone)")
    text = make(comparison=comparison, pr_metrics={"test.roc_auc": 0.7, "periods.test": 201311})
    assert "- regression rules **not applied**: the test rows moved and the base's model is not available" in text
    assert "the two columns score different flights" in text
    assert comparison.base_for_rules(BASE) is None


def test_the_same_rows_compare_the_committed_metrics() -> None:
    assert "- regression rules: the base's committed metrics, on the same test rows" in make()
    assert report.Comparison().base_for_rules(BASE) == BASE


def test_a_pr_that_changes_the_gate_says_so_under_the_verdict() -> None:
    text = make(params=[("gate.minimum.test.roc_auc", 0.7, 0.69), ("train.max_iter", 300, 50)])
    head = text.split("### Metrics")[0]
    assert "- ⚠️ **this PR changes the gate itself**: `gate.minimum.test.roc_auc` 0.7000 → 0.6900;" in head
    assert "train.max_iter" not in head


def test_fairness_and_robustness_show_the_worst_and_best_slice_and_each_invariant() -> None:
    from flightdelay.core.behaviour import Behaviour
    from flightdelay.interface import Invariant
    from flightdelay.settings import SliceRules

    pr = {
        "carrier": {
            "EV": {"roc_auc": 0.7417, "rows": 4908.0},
            "VX": {"roc_auc": 0.6192, "rows": 472.0},
            "HA": {"roc_auc": 0.2, "rows": 21.0},
        }
    }
    rules = SliceRules(min_rows=300, minimum={"roc_auc": 0.55}, max_gap={"roc_auc": 0.2})
    storm = Behaviour(Invariant("a storm at the origin", {"precip": 0.0}, {"precip": 0.5}), 2000, 0.2786, 0.0)
    text = make(pr_slices=pr, slice_rules=rules, behaviours=[storm])
    assert "### Fairness and robustness" in text
    assert "| carrier (2 of 3) | roc_auc | VX 0.6192 | EV 0.7417 | 0.1225 | floor 0.55, gap ≤ 0.2 |" in text
    assert "| a storm at the origin | +0.2786 | 0.0% of 2,000 | rise ≥ 0.05, lowered ≤ 5% |" in text
    assert "### Fairness and robustness" not in make(pr_slices=pr)  # no rules, nothing measured


def test_each_headline_change_says_whether_it_is_real() -> None:
    from flightdelay.core.significance import Interval

    intervals = {
        "test.roc_auc": Interval(-0.0004, -0.0019, 0.0011, 0.95),
        "test.log_loss": Interval(0.0027, 0.0012, 0.0041, 0.95),
    }
    text = make(significance=intervals, pr_metrics={"test.roc_auc": 0.72, "test.rows": 28889.0})
    assert "Is each change real? A paired bootstrap: 1,000 resamples of the same 28,889 test rows" in text
    assert "| test.roc_auc | -0.0004 | 95%: -0.0019 to +0.0011 | within noise |" in text
    assert "| test.log_loss | +0.0027 | 95%: +0.0012 to +0.0041 | **significant** |" in text
    missing = make(significance_missing="the base's model is not available (gone)")
    assert "Is each change real? Not measured: the base's model is not available (gone)." in missing
