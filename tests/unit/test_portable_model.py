"""A fitted model's file depends on its data and params, not on the cores of the machine that trained it."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from flightdelay import settings
from flightdelay.core.model import make_model, portable
from tests.conftest import ROOT

CATEGORICAL = ("colour",)
NUMERIC = ("size", "weight")


def _data(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "colour": rng.choice(np.array(["red", "green", "blue"], dtype=object), n),
            "size": rng.normal(size=n),
            "weight": rng.normal(size=n),
        }
    )
    frame["label"] = ((frame["size"] + (frame["colour"] == "red") + rng.normal(size=n)) > 0.5).astype(int)
    return frame


def _pickled(model: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _fitted_with(threads: int, estimator: str) -> Pipeline:
    train = settings.load(ROOT / "params.yaml").train.model_copy(update={"estimator": estimator})
    hgb = train.hist_gradient_boosting.model_copy(update={"max_iter": 20})
    model = make_model(train.model_copy(update={"hist_gradient_boosting": hgb}), CATEGORICAL, NUMERIC)
    data = _data()
    with threadpool_limits(limits=threads, user_api="openmp"):
        fitted: Pipeline = model.fit(data[list(CATEGORICAL + NUMERIC)], data["label"])
    return fitted


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "logistic_regression"])
def test_the_same_training_on_one_and_on_two_threads_pickles_to_the_same_bytes(estimator: str) -> None:
    one, two = _fitted_with(1, estimator), _fitted_with(2, estimator)
    assert _pickled(portable(one)) == _pickled(portable(two))


def test_without_portable_the_thread_count_is_in_the_file() -> None:
    """What ``portable`` is for: the check above fails without it (where OpenMP gives two threads)."""
    one, two = _fitted_with(1, "hist_gradient_boosting"), _fitted_with(2, "hist_gradient_boosting")
    if two.named_steps["estimator"]._bin_mapper.n_threads == 1:
        pytest.skip("OpenMP gives this machine one thread")
    assert _pickled(one) != _pickled(two)


def test_a_portable_model_predicts_as_before() -> None:
    model = _fitted_with(2, "hist_gradient_boosting")
    data = _data(500)
    before = model.predict_proba(data[list(CATEGORICAL + NUMERIC)])
    after = portable(model).predict_proba(data[list(CATEGORICAL + NUMERIC)])
    np.testing.assert_array_equal(before, after)
