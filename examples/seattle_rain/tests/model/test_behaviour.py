"""Model tests on the pipeline's own model: minimum quality and behaviour a forecaster would expect.

These gate registration in the release loop (``pytest tests/model``), so each has a reason to fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from flightdelay import settings
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def model(params: settings.Params) -> object:
    return dvc.load_model(ROOT, params.paths.model)  # refuses bytes dvc.lock does not record


@pytest.fixture(scope="module")
def test_rows(params: settings.Params) -> pd.DataFrame:
    return read_parquet(ROOT / params.paths.test)


@pytest.fixture(scope="module")
def joined_test(params: settings.Params, test_rows: pd.DataFrame) -> pd.DataFrame:
    """The joined rows of the test months, in the order featurize wrote them."""
    joined = read_parquet(ROOT / params.paths.joined)
    return joined[PROBLEM.period(joined).isin(PROBLEM.period(test_rows).unique())].reset_index(drop=True)


def proba(model: object, days: pd.DataFrame) -> np.ndarray:
    features = PROBLEM.features_of(days)[list(PROBLEM.features)]
    return np.asarray(model.predict_proba(features)[:, 1])  # type: ignore[attr-defined]


def test_the_test_months_clear_the_gate_floor(model: object, test_rows: pd.DataFrame, params: settings.Params) -> None:
    scored = model.predict_proba(test_rows[list(PROBLEM.features)])[:, 1]  # type: ignore[attr-defined]
    assert roc_auc_score(test_rows[PROBLEM.label], scored) >= params.gate.minimum["test.roc_auc"]


def test_beats_the_base_rate(model: object, joined_test: pd.DataFrame, test_rows: pd.DataFrame) -> None:
    y = test_rows[PROBLEM.label].to_numpy()
    assert log_loss(y, proba(model, joined_test)) < log_loss(y, np.full(len(y), y.mean()))


def test_features_from_joined_rows_match_the_training_data(joined_test: pd.DataFrame, test_rows: pd.DataFrame) -> None:
    """What the service computes from a request is what the model was evaluated on."""
    rebuilt = PROBLEM.features_of(joined_test)
    pd.testing.assert_frame_equal(rebuilt, test_rows[list(PROBLEM.features)].reset_index(drop=True))


def test_a_wet_week_does_not_lower_the_chance_of_rain_tomorrow(model: object, joined_test: pd.DataFrame) -> None:
    recent = ("precipitation", "precipitation_prev_day", "precipitation_2_days_ago", "precipitation_recent")
    dry = joined_test.assign(rain_days_recent=0.0, **dict.fromkeys(recent, 0.0))
    wet = joined_test.assign(
        precipitation=10.0,
        precipitation_prev_day=8.0,
        precipitation_2_days_ago=5.0,
        rain_days_recent=7.0,
        precipitation_recent=50.0,
    )
    change = proba(model, wet) - proba(model, dry)
    assert change.mean() > 0.1
    assert (change >= -0.01).mean() > 0.95


def test_an_unknown_weather_still_predicts(model: object, joined_test: pd.DataFrame) -> None:
    p = proba(model, joined_test.assign(weather="hail"))
    assert np.isfinite(p).all()
    assert ((p > 0) & (p < 1)).all()
