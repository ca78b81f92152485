"""The service as it ships: `bentoml build` from the pipeline's model, served from the built Bento."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flightdelay.io import bento
from flightdelay.serving import EXAMPLE, Predictor
from tests.conftest import ROOT
from tests.e2e.conftest import clone_template, environment

pytestmark = pytest.mark.slow


@dataclass
class Served:
    url: str
    bento_tag: str
    model_tag: str
    bento_home: Path
    log: Path

    def call(self, path: str, body: bytes | str | Any) -> tuple[int, Any]:
        data = (
            body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except urllib.error.URLError:
            return 0, ""  # not listening yet


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("service")
    env = environment(tmp) | {"BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    project = clone_template(tmp / "repo", env)
    project.dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))
    project.dvc("checkout")
    model_tag = project.cli("bento-model").stdout.split()[0]
    project.run(sys.executable, "-m", "bentoml", "build", "-f", "bentofile.yaml", "src", "--output", "tag")
    bento_tag = project.run(sys.executable, "-m", "bentoml", "list", "-o", "json").stdout
    bento_tag = json.loads(bento_tag)[0]["tag"]
    log = tmp / "predictions.jsonl"
    server_env = {k: v for k, v in project.env.items() if k != "PYTHONPATH"} | {"FLIGHTDELAY_PREDICTION_LOG": str(log)}
    with bento.running(bento_tag, cwd=tmp, env=server_env, output=tmp / "serve.log") as url:
        yield Served(url, bento_tag, model_tag, tmp / "bentoml", log)


def test_golden_request_matches_the_pipelines_model(served: Served) -> None:
    status, answer = served.call("/predict", {"flight": EXAMPLE})
    assert status == 200, answer
    name, _, version = served.model_tag.partition(":")
    bundle = served.bento_home / "models" / name / version
    expected, _ = Predictor.load(bundle).predict([EXAMPLE])
    assert answer["delay_probability"] == pytest.approx(float(expected[0]), abs=1e-12)
    assert answer["delayed"] == (answer["delay_probability"] >= answer["threshold"])
    assert (answer["model"], answer["model_version"]) == (name, version)
    assert answer["bento_tag"] == served.bento_tag
    assert len(answer["request_id"]) == 32


def test_batch_answers_each_flight(served: Served) -> None:
    flights = [EXAMPLE, EXAMPLE | {"sched_dep_time": 600, "sched_arr_time": 850}, EXAMPLE | {"precip": 0.4}]
    status, answers = served.call("/predict_batch", {"flights": flights})
    assert status == 200, answers
    assert len(answers) == 3
    assert len({a["request_id"] for a in answers}) == 3


@pytest.mark.parametrize(
    ("path", "body", "mentions"),
    [
        ("/predict", {"flight": {k: v for k, v in EXAMPLE.items() if k != "dest"}}, "dest"),
        ("/predict", {"flight": EXAMPLE | {"gate": "B12"}}, "gate"),
        ("/predict", {"flight": EXAMPLE | {"month": "October"}}, "month"),
        ("/predict", '{"flight": {"temp": NaN}}', "temp"),
        ("/predict", {"flight": EXAMPLE | {"distance": -5}}, "distance"),
        ("/predict", {"flight": EXAMPLE | {"carrier": "ZZ"}}, "carrier"),
        ("/predict", {"flight": EXAMPLE | {"origin": "XYZ"}}, "origin"),
        ("/predict_batch", {"flights": []}, "flights"),
        ("/predict_batch", {"flights": [EXAMPLE] * 1001}, "flights"),
        ("/predict", b'{"flight": {', "JSON"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_problem(served: Served, path: str, body: Any, mentions: str) -> None:
    status, answer = served.call(path, body)
    assert 400 <= status < 500, (status, answer)
    assert mentions in json.dumps(answer), answer


def test_health_metrics_and_openapi(served: Served) -> None:
    assert served.get("/livez")[0] == 200
    served.call("/predict", {"flight": EXAMPLE | {"dest": "XYZ"}})  # a destination the model never saw
    status, metrics = served.get("/metrics")
    assert status == 200
    counted = [line for line in metrics.splitlines() if line.startswith("flightdelay_unknown_category_values")]
    assert counted and float(counted[0].split()[-1]) >= 1
    status, spec = served.get("/docs.json")
    assert json.loads(spec)["components"]["schemas"]["Flight"]["example"] == EXAMPLE


def test_every_prediction_is_logged_with_its_request_id(served: Served) -> None:
    _, answer = served.call("/predict", {"flight": EXAMPLE})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if served.log.is_file() and answer["request_id"] in served.log.read_text():
            break
        time.sleep(0.2)
    records = [json.loads(line) for line in served.log.read_text().splitlines()]
    mine = [r for r in records if r["request_id"] == answer["request_id"]]
    assert len(mine) == 1
    assert mine[0]["input"]["flight"] == EXAMPLE["flight"]
    assert mine[0]["output"]["delay_probability"] == answer["delay_probability"]


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ) | {"BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    with (
        pytest.raises(bento.ServeError, match="no-such-bento:v1"),
        bento.running("no-such-bento:v1", cwd=tmp_path, env=env, output=tmp_path / "serve.log", timeout=60),
    ):
        pass
