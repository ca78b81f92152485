"""Variants on real requests (October 2013 scored by the pipeline's model): planted shadows and A/B variants."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flightdelay import ab, monitor, retrain, serving, settings, variants
from flightdelay.io import drift_report, dvc
from flightdelay.io.files import read_parquet
from flightdelay.io.github import Client
from flightdelay.problem import schemas
from tests import fake_github
from tests.conftest import ROOT

ROWS = 2000


@dataclass(frozen=True)
class Live:
    requests: list[dict[str, object]]
    ids: list[str]
    proba: np.ndarray  # production's answers
    threshold: float
    labels: np.ndarray  # 1 = delayed, as the pipeline labels October
    arrivals: pd.DataFrame  # request_id, arr_delay: the late labels


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, params: settings.Params) -> Live:
    flights = read_parquet(ROOT / params.paths.joined)
    october = flights[flights["month"] == 10].sample(ROWS, random_state=5)
    requests = [
        {
            k: (None if isinstance(v, float) and np.isnan(v) else (v.item() if hasattr(v, "item") else v))
            for k, v in r.items()
        }
        for r in october[list(schemas.REQUEST_COLUMNS)].to_dict(orient="records")
    ]
    bundle = tmp_path_factory.mktemp("bundle")
    model = dvc.verify_output(ROOT, "train", params.paths.model)
    serving.write_bundle(bundle, model, ROOT / params.paths.raw, ROOT / params.paths.metrics, {})
    predictor = serving.Predictor.load(bundle)
    proba, _ = predictor.predict(requests)
    ids = [uuid.uuid4().hex for _ in requests]
    delay = october["arr_delay"].to_numpy()
    labels = (np.isnan(delay) | (delay >= params.label.delay_minutes)).astype(int)
    arrivals = pd.DataFrame({"request_id": ids, "arr_delay": delay})
    return Live(requests, ids, np.asarray(proba, dtype=float), predictor.threshold, labels, arrivals)


def write_log(path: Path, live: Live, shadow: np.ndarray | None) -> Path:
    """Production's records, each followed by the shadow's answer to the same request (as the service logs them)."""
    lines = []
    for i, (request_id, request) in enumerate(zip(live.ids, live.requests, strict=True)):
        for variant, proba, version in (("production", live.proba, "3"), ("shadow", shadow, "4")):
            if proba is None:
                continue
            p = float(proba[i])
            output = {"delay_probability": p, "delayed": p >= live.threshold, "threshold": live.threshold}
            record = {"time": 1381000000 + i, "request_id": request_id, "input": request, "output": output}
            record["output"] |= {"model_version": version, "request_id": request_id}
            if variant == "shadow":
                record["variant"] = "shadow"
            lines.append(json.dumps(record) + "\n")
    path.write_text("".join(lines))
    return path


def flip(live: Live, share: float, seed: int) -> np.ndarray:
    """Production's answers with ``share`` of the decisions reversed: probabilities mirrored across the threshold."""
    shadow = live.proba.copy()
    chosen = np.random.default_rng(seed).choice(ROWS, int(share * ROWS), replace=False)
    shadow[chosen] = np.clip(2 * live.threshold - shadow[chosen], 0.0, 1.0)
    same = (shadow[chosen] >= live.threshold) == (live.proba[chosen] >= live.threshold)
    shadow[chosen[same]] = np.where(live.proba[chosen[same]] >= live.threshold, 0.0, 1.0)  # exactly at the threshold
    return shadow


def shadow_of(params: settings.Params, log: Path, labels: Path | None = None) -> variants.ShadowComparison | None:
    """The monitor's shadow verdict on a log, without the drift half of the run (tested once, above)."""
    arrived = monitor.read_labels(labels) if labels else None
    return monitor.shadow_of(variants.answers(log), arrived, params, len(monitor.read_log(log)[0]))


def ab_of(params: settings.Params, log: Path, labels: Path | None = None) -> variants.ABComparison | None:
    arrived = monitor.read_labels(labels) if labels else None
    return monitor.ab_of(variants.answers(log), arrived, params)


@pytest.fixture(scope="module")
def flagged(
    live: Live, params: settings.Params, tmp_path_factory: pytest.TempPathFactory
) -> tuple[monitor.Result, monitor.Window, monitor.Window]:
    """The whole monitor run on a log whose shadow reverses a tenth of production's decisions."""
    log = write_log(tmp_path_factory.mktemp("flagged") / "predictions.jsonl", live, flip(live, 0.10, seed=1))
    return monitor.run(ROOT, params, log=log)


def test_a_shadow_that_decides_differently_on_a_tenth_of_requests_is_flagged(
    flagged: tuple[monitor.Result, monitor.Window, monitor.Window],
) -> None:
    result, _, window = flagged
    assert len(window.features) == ROWS  # the shadow's records are not production's rows
    shadow = result.shadow
    assert shadow is not None
    assert (shadow.pairs, shadow.production_rows) == (ROWS, ROWS)
    assert shadow.disagreement == pytest.approx(0.10)
    low, high = shadow.interval
    assert low < 0.10 < high and high - low < 0.03
    assert shadow.flagged and shadow.verdict == "review the shadow before promoting"
    assert result.variant_decision and not result.quality_failed
    assert shadow.versions == {"production": "3", "shadow": "4"}
    text = drift_report.digest(result)
    assert "### Shadow against production" in text
    assert "**review the shadow before promoting**: production (3) and the shadow (4)" in text
    assert "| decisions that differ | 10.00% (95% CI " in text
    assert "- **Shadow: review the shadow before promoting** — 2,000 of 2,000 requests answered by both" in text


def test_a_shadow_that_agrees_is_not_flagged(live: Live, params: settings.Params, tmp_path: Path) -> None:
    noise = np.random.default_rng(2).normal(0, 0.002, ROWS)  # another build of the same model, nearly
    log = write_log(tmp_path / "predictions.jsonl", live, np.clip(live.proba + noise, 0, 1))
    shadow = shadow_of(params, log)
    assert shadow is not None and not shadow.decision_due
    assert shadow.disagreement < 0.02 and not shadow.flagged
    assert shadow.verdict == "the shadow agrees with production"
    assert shadow.differences["mean_abs"] == pytest.approx(0.0016, abs=0.0004)


def test_with_labels_the_better_variant_is_promoted(live: Live, params: settings.Params, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    live.arrivals.to_csv(labels, index=False)
    sharper = 0.7 * live.proba + 0.3 * live.labels  # a shadow that knows more than production
    log = write_log(tmp_path / "better.jsonl", live, sharper)
    shadow = shadow_of(params, log, labels)
    assert shadow is not None and shadow.live is not None and shadow.labelled == ROWS
    assert shadow.live["shadow"]["roc_auc"] > shadow.live["production"]["roc_auc"]
    assert shadow.verdict == "promote the shadow"
    shuffled = np.random.default_rng(3).permutation(live.proba)  # a shadow that knows nothing
    log = write_log(tmp_path / "worse.jsonl", live, shuffled)
    shadow = shadow_of(params, log, labels)
    assert shadow is not None and shadow.live is not None
    assert shadow.live["shadow"]["roc_auc"] == pytest.approx(0.5, abs=0.05)
    assert shadow.verdict == "keep production" and shadow.flagged


def test_too_few_pairs_give_no_verdict_and_a_log_without_a_shadow_gives_none(
    live: Live, params: settings.Params, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "predictions.jsonl", live, live.proba)
    pairs = variants.shadow_pairs(variants.answers(log)).head(150)
    shadow = variants.compare_shadow(pairs, ROWS, None, params.monitor)
    assert shadow.verdict == "not enough paired requests yet (150 < 200, monitor.min_pairs)"
    assert not shadow.flagged
    assert shadow_of(params, write_log(tmp_path / "alone.jsonl", live, None)) is None


def test_the_wilson_interval() -> None:
    assert variants.wilson(0, 0) == (0.0, 1.0)
    low, high = variants.wilson(0, 100)
    assert low == 0.0 and high == pytest.approx(0.0370, abs=1e-4)
    low, high = variants.wilson(10, 100)  # the textbook example: 0.0552 to 0.1744
    assert (low, high) == (pytest.approx(0.0552, abs=1e-4), pytest.approx(0.1744, abs=1e-4))


def write_ab_log(path: Path, live: Live, b: np.ndarray, share: float = 0.5) -> Path:
    """An A/B test's log: each request answered by the variant its id assigns it to, as the service does."""
    lines = []
    for i, (request_id, request) in enumerate(zip(live.ids, live.requests, strict=True)):
        variant = "b" if ab.assigned_to_b(request_id, share) else "a"
        p = float(b[i] if variant == "b" else live.proba[i])
        output = {"delay_probability": p, "delayed": p >= live.threshold, "threshold": live.threshold}
        output |= {"model_version": "4" if variant == "b" else "3", "request_id": request_id, "variant": variant}
        record = {"time": 1381000000 + i, "request_id": request_id, "variant": variant, "input": request}
        lines.append(json.dumps(record | {"output": output}) + "\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def labels(live: Live, tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    live.arrivals.to_csv(path, index=False)
    return path


def test_an_ab_test_promotes_a_better_b_with_a_confidence_interval(
    live: Live, params: settings.Params, labels: Path, tmp_path: Path
) -> None:
    log = write_ab_log(tmp_path / "predictions.jsonl", live, 0.7 * live.proba + 0.3 * live.labels)
    result, _, window = monitor.run(ROOT, params, log=log, labels=labels)
    assert len(window.features) == ROWS  # both variants answered production traffic
    test = result.ab
    assert test is not None and result.shadow is None
    assert sum(test.requests.values()) == ROWS and 0.45 < test.requests["b"] / ROWS < 0.55
    assert test.labelled == test.requests
    assert test.difference is not None and test.difference[2] < 0  # the whole interval: b's log loss is lower
    assert test.verdict == "promote b" and test.flagged
    assert test.versions == {"a": "3", "b": "4"}
    text = drift_report.digest(result)
    assert "### A/B test" in text and "**promote b**: a (3) and b (4)." in text
    assert "- **A/B test: promote b** — " in text


def test_an_ab_test_of_equal_variants_keeps_testing_then_keeps_a(
    live: Live, params: settings.Params, labels: Path, tmp_path: Path
) -> None:
    log = write_ab_log(tmp_path / "predictions.jsonl", live, live.proba)
    test = ab_of(params, log, labels)
    assert test is not None and test.difference is not None and test.needed is not None
    assert test.difference[1] < 0 < test.difference[2]
    # Detecting 0.005 in log loss takes far more than a thousand requests per variant.
    assert test.needed > 20_000
    more = test.needed - min(test.labelled.values())
    assert test.verdict == f"keep testing: about {more:,} more labelled requests per variant" and not test.flagged
    coarse = params.model_copy(update={"monitor": params.monitor.model_copy(update={"ab_min_effect": 0.2})})
    test = ab_of(coarse, log, labels)
    assert test is not None and test.needed == coarse.monitor.min_labels
    assert test.verdict == "keep a: no difference of 0.2 in log loss or more"


def test_an_ab_test_keeps_a_when_b_is_worse_and_waits_for_labels(
    live: Live, params: settings.Params, labels: Path, tmp_path: Path
) -> None:
    log = write_ab_log(tmp_path / "predictions.jsonl", live, np.random.default_rng(3).permutation(live.proba))
    test = ab_of(params, log, labels)
    assert test is not None and test.verdict == "keep a" and test.flagged
    unlabelled = ab_of(params, log)
    assert unlabelled is not None and unlabelled.live is None
    assert unlabelled.verdict.startswith("not enough labels yet (at least 500 per variant, monitor.min_labels; have 0")


def test_a_verdict_that_calls_for_a_decision_opens_then_updates_the_monitor_issue(
    flagged: tuple[monitor.Result, monitor.Window, monitor.Window],
) -> None:
    result, _, _ = flagged
    told: list[str] = []
    with fake_github.serve() as (base, state):
        client = Client(base, "acme/flightdelay", fake_github.TOKEN)
        first = retrain.report_variants(client, drift_report.digest(result), told.append)
        again = retrain.report_variants(client, drift_report.digest(result), told.append)
    assert first == again and len(state.issues) == 1
    issue = state.issues[first]
    assert issue["title"] == "Model monitor: a deployment variant needs a decision"
    assert issue["labels"] == [{"name": retrain.LABEL}]
    assert "**review the shadow before promoting**" in issue["body"]
    assert told == [f"created issue #{first}", f"updated issue #{first}"]
