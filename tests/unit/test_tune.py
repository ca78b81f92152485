from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from flightdelay import settings, tune
from flightdelay.problem import PROBLEM


def small(params: settings.Params, trials: int) -> settings.Params:
    space = {"max_iter": (5, 10), "max_leaf_nodes": (4, 8), "min_samples_leaf": (5, 10)}
    return params.model_copy(update={"tune": params.tune.model_copy(update={"max_trials": trials, "space": space})})


def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=n) for c in PROBLEM.numeric})
    for c in PROBLEM.categorical:
        frame[c] = rng.choice(["A", "B", "C"], size=n)
    frame[PROBLEM.label] = (frame[PROBLEM.numeric[0]] + rng.normal(size=n) > 0).astype(int)
    return frame


def test_candidates_start_with_the_current_params(params: settings.Params) -> None:
    found = tune.candidates(small(params, 3))
    assert found[0] == params.train.hist_gradient_boosting.model_dump()
    assert len(found) == 3
    assert len({tuple(sorted(c.items())) for c in found}) == 3


def test_adopt_command_sets_every_param() -> None:
    line = tune.adopt_command({"max_iter": 10, "learning_rate": 0.1})
    assert (
        line
        == "dvc exp run -S train.hist_gradient_boosting.learning_rate=0.1 -S train.hist_gradient_boosting.max_iter=10"
    )


def test_every_trial_is_a_child_run(params: settings.Params, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/tune.db")
    mlflow.set_experiment("tune-test")
    trials = tune.search(small(params, 3), synthetic(300, 0), synthetic(200, 1))
    assert len(trials) == 3
    assert all(0.0 <= t.valid_roc_auc <= 1.0 for t in trials)
    assert max(t.valid_roc_auc for t in trials) > 0.7  # the label follows one feature closely
    runs = mlflow.search_runs(output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1
    assert len(children) == 3
    assert parents[0].data.tags["adopt"].startswith("dvc exp run -S")


CURRENT = {"learning_rate": 0.05, "max_iter": 200}


def trial(auc: float, seconds: float = 1.0, **changes: float) -> tune.Trial:
    return tune.Trial(CURRENT | changes, auc, seconds)


def test_the_summary_lists_every_trial_it_counts() -> None:
    trials = [trial(0.70), trial(0.71, learning_rate=0.1), trial(0.69, max_iter=100)]
    lines = tune.summary(trials, CURRENT)
    assert lines[0] == "3 trials, ranked by validation ROC AUC:"
    assert [line.split()[0] for line in lines[1:4]] == ["0.7100", "0.7000", "0.6900"]
    assert lines[2].endswith("(current params.yaml)")
    assert lines[4] == (
        "adopt the best (+0.0100 over the current params) with:\n"
        "  dvc exp run -S train.hist_gradient_boosting.learning_rate=0.1"
    )


def test_a_long_search_says_how_many_it_leaves_out() -> None:
    trials = [trial(0.60 + i / 100, max_iter=i) for i in range(12)]
    lines = tune.summary(trials, CURRENT, shown=10)
    assert lines[0] == "12 trials, ranked by validation ROC AUC; the best 10:"
    assert lines[11] == "  ... 2 more in the MLflow run `tune`"


def test_when_the_current_params_are_the_best_there_is_nothing_to_adopt() -> None:
    trials = [trial(0.71, learning_rate=0.1), trial(0.71, seconds=5.0), trial(0.70, max_iter=100)]
    lines = tune.summary(trials, CURRENT)
    assert lines[1].endswith("(current params.yaml)")  # a tie goes to what is already there
    assert lines[-1] == "the current params.yaml is already the best found (0.7100); nothing to adopt"
    assert not any("dvc exp run" in line for line in lines)


def test_no_finished_trial_says_so() -> None:
    assert tune.summary([], CURRENT) == ["no trial finished within the budget; raise it with --budget"]
