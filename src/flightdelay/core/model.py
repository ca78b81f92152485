"""The scikit-learn pipeline: preprocessing and estimator, chosen and tuned in ``params.yaml``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from flightdelay.settings import Train


def _hist_gradient_boosting(train: Train, categorical: list[str], numeric: list[str]) -> Pipeline:
    # Unknown and missing categories both become NaN, which the trees route like any missing value.
    encode = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        dtype=np.float64,
    )
    columns = ColumnTransformer(
        [("categorical", encode, categorical), ("numeric", "passthrough", numeric)],
        verbose_feature_names_out=False,
    )
    hp = train.hist_gradient_boosting
    estimator = HistGradientBoostingClassifier(
        learning_rate=hp.learning_rate,
        max_iter=hp.max_iter,
        max_leaf_nodes=hp.max_leaf_nodes,
        min_samples_leaf=hp.min_samples_leaf,
        l2_regularization=hp.l2_regularization,
        categorical_features=list(range(len(categorical))),
        early_stopping=False,
        random_state=train.random_state,
    )
    return Pipeline([("columns", columns), ("estimator", estimator)])


def _logistic_regression(train: Train, categorical: list[str], numeric: list[str]) -> Pipeline:
    encode = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50),
    )
    scale = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    columns = ColumnTransformer(
        [("categorical", encode, categorical), ("numeric", scale, numeric)],
        verbose_feature_names_out=False,
    )
    hp = train.logistic_regression
    return Pipeline(
        [
            ("columns", columns),
            ("estimator", LogisticRegression(C=hp.C, max_iter=hp.max_iter, random_state=train.random_state)),
        ]
    )


def make_model(train: Train, categorical: Sequence[str], numeric: Sequence[str]) -> Pipeline:
    """An unfitted pipeline on a frame of the ``categorical`` columns (strings, None when unknown), then the
    ``numeric`` ones (floats, NaN when unknown): the problem's features."""
    if train.estimator == "hist_gradient_boosting":
        return _hist_gradient_boosting(train, list(categorical), list(numeric))
    return _logistic_regression(train, list(categorical), list(numeric))


def portable(model: Pipeline) -> Pipeline:
    """The fitted model without the training machine in it, so its file's bytes depend on the data and params only.

    A fitted gradient-boosted estimator keeps its bin mapper, which records the number of OpenMP threads it
    was fitted with (the machine's cores unless limited): the same training on 2 and on 4 cores pickled to
    different bytes, so ``dvc.lock`` changed on a machine with other cores. The mapper's constructor
    default, None, has it use the loading machine's threads, as the fitted estimator itself does.
    """
    mapper = getattr(model.named_steps["estimator"], "_bin_mapper", None)
    if mapper is not None:
        mapper.n_threads = None
    return model
