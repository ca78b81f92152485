"""The service's scorer gives the fitted pipeline's probabilities, on both of its paths and for both estimators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightdelay import settings
from flightdelay.core import scoring
from flightdelay.core.model import make_model
from flightdelay.core.scoring import Scorer
from tests.conftest import ROOT

CATEGORICAL = ("colour", "shape")
NUMERIC = ("size", "weight")


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "colour": rng.choice(np.array(["red", "green", "blue", None], dtype=object), n),
            "shape": rng.choice(np.array(["square", "round"], dtype=object), n),
            "size": rng.normal(size=n),
            "weight": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        }
    )
    frame["label"] = ((frame["size"] + (frame["colour"] == "red") + rng.normal(scale=0.5, size=n)) > 0.5).astype(int)
    return frame


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=object if c in CATEGORICAL else float) for c in CATEGORICAL + NUMERIC}


def _boosted(max_iter: int, min_samples_leaf: int, estimator: str = "hist_gradient_boosting") -> settings.Train:
    """params.yaml's training settings, with ``estimator`` and a small gradient-boosted model."""
    train = settings.load(ROOT / "params.yaml").train.model_copy(update={"estimator": estimator})
    hgb = train.hist_gradient_boosting.model_copy(update={"max_iter": max_iter, "min_samples_leaf": min_samples_leaf})
    return train.model_copy(update={"hist_gradient_boosting": hgb})


@pytest.fixture(scope="module", params=["hist_gradient_boosting", "logistic_regression"])
def fitted(request: pytest.FixtureRequest) -> Scorer:
    pipeline = make_model(_boosted(40, 5, request.param), CATEGORICAL, NUMERIC)
    data = rows(2000, seed=0)
    pipeline.fit(data[list(CATEGORICAL + NUMERIC)], data["label"])
    return Scorer.of(pipeline, CATEGORICAL, NUMERIC, threads=2)


def test_the_fast_path_is_taken_for_gradient_boosting_only(fitted: Scorer) -> None:
    boosted = fitted.pipeline.named_steps["estimator"].__class__.__name__ == "HistGradientBoostingClassifier"
    assert (fitted.trees is not None) == boosted


@pytest.mark.parametrize("n", [1, scoring.PARALLEL_MIN_ROWS - 1, scoring.PARALLEL_MIN_ROWS, 1500])
def test_probabilities_equal_the_pipelines(fitted: Scorer, n: int) -> None:
    frame = rows(n, seed=n)
    expected = fitted.pipeline.predict_proba(frame[list(CATEGORICAL + NUMERIC)])[:, 1]
    proba, unseen = fitted.score(columns(frame))
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
    assert unseen == 0


def test_unseen_categories_are_counted_and_scored_as_missing(fitted: Scorer) -> None:
    frame = rows(6, seed=7)
    frame.loc[[1, 4], "colour"] = "purple"
    frame.loc[[2], "shape"] = "triangle"
    missing = frame.assign(colour=frame["colour"].where(~frame.index.isin([1, 4]), None))
    missing["shape"] = missing["shape"].where(missing.index != 2, None)
    proba, unseen = fitted.score(columns(frame))
    assert unseen == 3
    if fitted.trees is not None:  # the trees route an unknown category as a missing one, like the pipeline
        np.testing.assert_allclose(proba, fitted.score(columns(missing))[0], rtol=0, atol=1e-12)
    expected = fitted.pipeline.predict_proba(frame[list(CATEGORICAL + NUMERIC)])[:, 1]
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)


def test_a_problem_without_categorical_features_takes_the_fast_path_too() -> None:
    train = settings.load(ROOT / "params.yaml").train.model_copy(update={"estimator": "hist_gradient_boosting"})
    pipeline = make_model(train, (), NUMERIC)
    data = rows(500, seed=3)
    pipeline.fit(data[list(NUMERIC)], data["label"])
    scorer = Scorer.of(pipeline, (), NUMERIC)
    assert scorer.trees is not None
    proba, unseen = scorer.score({c: data[c].to_numpy(dtype=float) for c in NUMERIC})
    np.testing.assert_allclose(proba, pipeline.predict_proba(data[list(NUMERIC)])[:, 1], rtol=0, atol=1e-12)
    assert unseen == 0


def test_categories_past_one_bitset_word_route_as_the_pipelines() -> None:
    """A category's code past 31 is in the second of scikit-learn's bitset words; unseen ones go as missing."""
    rng = np.random.default_rng(5)
    n = 4000
    frame = pd.DataFrame(
        {
            "city": rng.choice(np.array([f"c{i:03d}" for i in range(150)] + [None], dtype=object), n),
            "size": rng.normal(size=n),
        }
    )
    effect = {f"c{i:03d}": (i * 37 % 150) / 75 - 1 for i in range(150)}
    frame["label"] = ((frame["city"].map(effect).fillna(0) + frame["size"] + rng.normal(size=n)) > 0).astype(int)
    pipeline = make_model(_boosted(60, 5), ("city",), ("size",))
    pipeline.fit(frame[["city", "size"]], frame["label"])
    scorer = Scorer.of(pipeline, ("city",), ("size",))
    estimator = pipeline.named_steps["estimator"]
    splits = [node for (tree,) in estimator._predictors for node in tree.nodes if node["is_categorical"]]
    assert any(node["missing_go_to_left"] for node in splits) and not all(node["missing_go_to_left"] for node in splits)
    probe = frame.assign(city=np.where(np.arange(n) % 50 == 0, "elsewhere", frame["city"]))
    proba, unseen = scorer.score({"city": probe["city"].to_numpy(dtype=object), "size": probe["size"].to_numpy()})
    np.testing.assert_allclose(proba, pipeline.predict_proba(probe[["city", "size"]])[:, 1], rtol=0, atol=1e-12)
    assert unseen == n // 50


def test_trees_that_are_a_single_leaf_score_as_the_pipelines() -> None:
    data = rows(300, seed=4)
    pipeline = make_model(_boosted(5, 300), CATEGORICAL, NUMERIC)  # no split can keep 300 rows on each side
    pipeline.fit(data[list(CATEGORICAL + NUMERIC)], data["label"])
    assert all(tree.nodes["is_leaf"][0] for (tree,) in pipeline.named_steps["estimator"]._predictors)
    proba, _ = Scorer.of(pipeline, CATEGORICAL, NUMERIC).score(columns(data))
    np.testing.assert_allclose(
        proba, pipeline.predict_proba(data[list(CATEGORICAL + NUMERIC)])[:, 1], rtol=0, atol=1e-12
    )


def test_a_multiclass_estimator_is_refused_by_name_and_scored_by_its_pipeline() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    data = rows(300, seed=6)
    estimator = HistGradientBoostingClassifier(max_iter=3).fit(data[list(NUMERIC)], data["label"] + (data["size"] > 1))
    with pytest.raises(ValueError, match="binary classifier"):
        scoring.onnx_trees(estimator)
    pipeline = make_model(_boosted(3, 20), CATEGORICAL, NUMERIC)
    pipeline.fit(data[list(CATEGORICAL + NUMERIC)], data["label"] + (data["size"] > 1))
    assert Scorer.of(pipeline, CATEGORICAL, NUMERIC).trees is None  # scored by its pipeline instead
