"""Model tests on the pipeline's own model: minimum quality and behaviour a forecaster would expect.

These gate registration in the release loop, so each has a reason to fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from flightdelay import settings
from flightdelay.core.behaviour import measure
from flightdelay.interface import Invariant
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from flightdelay.problem.features import FEATURES, LABEL, build_features
from tests.conftest import ROOT

MIN_ROC_AUC = 0.70


@pytest.fixture(scope="module")
def model(params: settings.Params) -> object:
    return dvc.load_model(ROOT, params.paths.model)  # refuses bytes dvc.lock does not record


@pytest.fixture(scope="module")
def test_rows(params: settings.Params) -> pd.DataFrame:
    return read_parquet(ROOT / params.paths.test)


@pytest.fixture(scope="module")
def joined_test(params: settings.Params, test_rows: pd.DataFrame) -> pd.DataFrame:
    flights = read_parquet(ROOT / params.paths.joined)
    month = flights["year"] * 100 + flights["month"]
    latest = (test_rows["year"] * 100 + test_rows["month"]).max()
    return flights[month == latest].reset_index(drop=True)


def proba(model: object, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame[list(FEATURES)])[:, 1])  # type: ignore[attr-defined]


def test_minimum_roc_auc_on_the_test_month(model: object, test_rows: pd.DataFrame) -> None:
    assert roc_auc_score(test_rows[LABEL], proba(model, test_rows)) >= MIN_ROC_AUC


def test_beats_the_base_rate(model: object, test_rows: pd.DataFrame) -> None:
    y = test_rows[LABEL].to_numpy()
    constant = np.full(len(y), y.mean())
    assert log_loss(y, proba(model, test_rows)) < log_loss(y, constant)


def test_features_from_raw_rows_match_the_training_data(joined_test: pd.DataFrame, test_rows: pd.DataFrame) -> None:
    """What the service will compute from a raw flight is what the model was evaluated on."""
    rebuilt = build_features(joined_test)
    pd.testing.assert_frame_equal(rebuilt.reset_index(drop=True), test_rows[list(FEATURES)].reset_index(drop=True))


def _sample(joined: pd.DataFrame, n: int = 2000) -> pd.DataFrame:
    return joined.sample(n=min(n, len(joined)), random_state=0).reset_index(drop=True)


@pytest.mark.parametrize("invariant", PROBLEM.invariants(), ids=lambda i: i.name)
def test_the_problems_invariants_hold(model: object, joined_test: pd.DataFrame, invariant: Invariant) -> None:
    """A later departure, a storm at the origin: what the PR gate's robustness rules measure, measured alike."""
    (measured,) = measure(lambda rows: proba(model, build_features(rows)), joined_test, [invariant])
    assert measured.failures() == []


def test_unknown_categories_still_predict(model: object, joined_test: pd.DataFrame) -> None:
    rows = _sample(joined_test, 50).assign(carrier="ZZ", dest="XXX", plane_manufacturer="NEWCO")
    p = proba(model, build_features(rows))
    assert np.isfinite(p).all()
    assert ((p > 0) & (p < 1)).all()
