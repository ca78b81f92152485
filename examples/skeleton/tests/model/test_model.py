"""Model tests on the pipeline's own model: they gate registration in the release (TODO: your expectations)."""

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

MIN_ROC_AUC = 0.70


@pytest.fixture(scope="module")
def model(params: settings.Params) -> object:
    return dvc.load_model(ROOT, params.paths.model)  # refuses bytes dvc.lock does not record


@pytest.fixture(scope="module")
def test_rows(params: settings.Params) -> pd.DataFrame:
    return read_parquet(ROOT / params.paths.test)


def proba(model: object, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(rows[list(PROBLEM.features)])[:, 1])  # type: ignore[attr-defined]


def test_minimum_roc_auc_on_the_test_months(model: object, test_rows: pd.DataFrame) -> None:
    assert roc_auc_score(test_rows[PROBLEM.label], proba(model, test_rows)) >= MIN_ROC_AUC


def test_beats_the_base_rate(model: object, test_rows: pd.DataFrame) -> None:
    y = test_rows[PROBLEM.label].to_numpy()
    assert log_loss(y, proba(model, test_rows)) < log_loss(y, np.full(len(y), y.mean()))
