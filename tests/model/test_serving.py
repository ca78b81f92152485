"""The service's predictor on the pipeline's own model: same probabilities as evaluate, sane on any valid input."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from flightdelay import settings
from flightdelay.core import scoring
from flightdelay.io import dvc
from flightdelay.io.files import read_parquet
from flightdelay.problem import EXAMPLE, schemas
from flightdelay.problem.features import FEATURES
from flightdelay.serving import Gathered, Predictor, UnknownCodeError, write_bundle
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def predictor(params: settings.Params, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    bundle = tmp_path_factory.mktemp("bundle")
    model = dvc.verify_output(ROOT, "train", params.paths.model)  # the bundle's model is unpickled below
    write_bundle(bundle, model, ROOT / params.paths.raw, ROOT / params.paths.metrics, {})
    return Predictor.load(bundle, threads=2)


def requests_from(rows: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(schemas.REQUEST_COLUMNS)
    return rows[columns].astype(object).where(rows[columns].notna(), None).to_dict("records")


def test_service_and_evaluate_give_the_same_probabilities(predictor: Predictor, params: settings.Params) -> None:
    flights = read_parquet(ROOT / params.paths.joined)
    test = read_parquet(ROOT / params.paths.test)
    latest = flights[(flights["year"] * 100 + flights["month"]) == (test["year"] * 100 + test["month"]).max()]
    sample = latest.sample(n=2000, random_state=1)
    positions = latest.index.get_indexer(sample.index)
    requests = requests_from(sample)
    model = dvc.load_model(ROOT, params.paths.model)
    evaluated = model.predict_proba(test.iloc[positions][list(FEATURES)])[:, 1]
    # onnxruntime sums the trees in another order than scikit-learn: within 1e-12, at every batch size and
    # on both of its sessions (one thread; two from PARALLEL_MIN_ROWS rows on).
    served, _ = predictor.predict(requests)
    np.testing.assert_allclose(served, evaluated, rtol=0, atol=1e-12)
    size = scoring.PARALLEL_MIN_ROWS - 1
    small = np.concatenate([predictor.predict(requests[i : i + size])[0] for i in range(0, 500, size)])
    singles = np.array([predictor.predict([request])[0][0] for request in requests[:200]])
    np.testing.assert_allclose(small, evaluated[: len(small)], rtol=0, atol=1e-12)
    np.testing.assert_allclose(singles, evaluated[:200], rtol=0, atol=1e-12)


def test_flights_scored_together_get_the_probabilities_they_get_alone(
    predictor: Predictor, params: settings.Params
) -> None:
    """The service scores the flights of requests that arrive together in one call (``Gathered``)."""
    flights = read_parquet(ROOT / params.paths.joined).sample(n=60, random_state=2)
    requests = requests_from(flights)
    alone = [predictor.predict([request])[0][0] for request in requests]

    async def together() -> list[list[float | None]]:
        gathered = Gathered(predictor.predict, scoring.PARALLEL_MIN_ROWS - 1)
        return list(await asyncio.gather(*(gathered.score([request]) for request in requests)))

    assert asyncio.run(together()) == [[p] for p in alone]


def test_unknown_carrier_is_the_callers_error(predictor: Predictor) -> None:
    with pytest.raises(UnknownCodeError, match=r"flights\[0\]\.carrier: unknown carrier 'ZZ'"):
        predictor.predict([EXAMPLE | {"carrier": "ZZ"}])


def test_unseen_categories_are_counted_not_refused(predictor: Predictor) -> None:
    proba, unseen = predictor.predict([EXAMPLE | {"dest": "XYZ"}])
    assert unseen == 1
    assert 0.0 < proba[0] < 1.0


Flight = schemas.request_model()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sched_dep_time=st.integers(0, 23).map(lambda h: h * 100) | st.integers(0, 2359).filter(lambda t: t % 100 < 60),
    distance=st.floats(1, 5000),
    precip=st.none() | st.floats(0, 20),
    visib=st.none() | st.floats(0, 10),
    wind_speed=st.none() | st.floats(0, 100),
    tail_prev_departure_delay=st.none() | st.floats(-60, 600),
    carrier=st.sampled_from(["UA", "AA", "DL", "B6", "EV", "WN"]),
    dest=st.sampled_from(["IAH", "ORD", "ATL", "LAX", "SJU", "XYZ"]),
)
def test_any_valid_request_gets_a_probability(predictor: Predictor, **fields: Any) -> None:
    request = Flight(**(EXAMPLE | fields)).model_dump()
    proba, _ = predictor.predict([request])
    assert 0.0 <= proba[0] <= 1.0
    assert np.isfinite(proba[0])
