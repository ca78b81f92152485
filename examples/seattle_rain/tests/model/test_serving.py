"""The service's predictor on the pipeline's own model: same probabilities as evaluate, sane on any valid day."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from flightdelay import settings
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet
from flightdelay.problem import EXAMPLE, PROBLEM, schemas
from flightdelay.serving import Predictor, UnknownCodeError, write_bundle
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def predictor(params: settings.Params, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    bundle = tmp_path_factory.mktemp("bundle")
    model = dvc.verify_output(ROOT, "train", params.paths.model)  # the bundle's model is unpickled below
    write_bundle(bundle, model, ROOT / params.paths.raw, ROOT / params.paths.metrics, {})
    return Predictor.load(bundle)


def requests_from(rows: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(PROBLEM.request_columns())
    return rows[columns].astype(object).where(rows[columns].notna(), None).to_dict("records")


def test_service_and_evaluate_give_the_same_probabilities(predictor: Predictor, params: settings.Params) -> None:
    joined = read_parquet(ROOT / params.paths.joined)
    test = read_parquet(ROOT / params.paths.test)
    days = joined[PROBLEM.period(joined).isin(PROBLEM.period(test).unique())]
    served, unseen = predictor.predict(requests_from(days))
    model = dvc.load_model(ROOT, params.paths.model)
    # The service runs the same trees in onnxruntime, which sums them in another order: within 1e-12.
    expected = model.predict_proba(test[list(PROBLEM.features)])[:, 1]
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)
    assert unseen == 0


def test_an_unknown_weather_is_the_callers_error(predictor: Predictor) -> None:
    with pytest.raises(UnknownCodeError, match=r"\.weather: unknown weather 'hail'"):
        predictor.predict([EXAMPLE | {"weather": "hail"}])


Day = PROBLEM.request_model()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    date=st.dates(min_value=pd.Timestamp("2000-01-01").date(), max_value=pd.Timestamp("2040-12-31").date()).map(
        lambda d: d.isoformat()
    ),
    precipitation=st.floats(0, 200),
    temp_max=st.floats(10, 40),
    temp_min=st.floats(-30, 10),
    wind=st.floats(0, 30),
    weather=st.sampled_from(schemas.WEATHER_TYPES),
    precipitation_prev_day=st.none() | st.floats(0, 200),
    rain_days_recent=st.none() | st.floats(0, 7),
)
def test_any_valid_day_gets_a_probability(predictor: Predictor, **fields: Any) -> None:
    request = Day(**(EXAMPLE | fields)).model_dump()
    proba, _ = predictor.predict([request])
    assert 0.0 <= proba[0] <= 1.0
    assert np.isfinite(proba[0])
