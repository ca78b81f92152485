"""The service as it ships: `bentoml build` from the pipeline's model, served from the built Bento."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from flightdelay import deploy
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


def test_the_bentos_dockerfile_starts_from_the_pinned_base_image(served: Served) -> None:
    name, _, version = served.bento_tag.partition(":")
    dockerfile = (served.bento_home / "bentos" / name / version / "env" / "docker" / "Dockerfile").read_text()
    pinned = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["docker"]["base_image"]
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms == [pinned]


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
    # The drift gauge: predicted probabilities, and the reference rate they should track.
    values = {
        line.split()[0]: float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("flightdelay_")
    }
    evaluation = json.loads((ROOT / "reports" / "metrics.json").read_text())
    assert values["flightdelay_reference_delay_rate"] == pytest.approx(evaluation["test"]["positive_rate"])
    assert values["flightdelay_delay_probability_count"] >= 1
    # Every series the alert rules and the canary analysis select is one the service exposes.
    exposed = {line.split("{")[0].split()[0] for line in metrics.splitlines() if line and not line.startswith("#")}
    assert deploy.alert_series(ROOT) - {"up"} <= exposed, deploy.alert_series(ROOT) - exposed
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


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        ("/predict", GenerationMode.POSITIVE),
        ("/predict", GenerationMode.NEGATIVE),
        ("/predict_batch", GenerationMode.POSITIVE),
        ("/predict_batch", GenerationMode.NEGATIVE),
        ("/livez", GenerationMode.POSITIVE),
        ("/readyz", GenerationMode.POSITIVE),
        ("/metrics", GenerationMode.POSITIVE),
    ],
)
def test_schemathesis_finds_no_server_error(served: Served, path: str, mode: GenerationMode) -> None:
    """Requests generated from the service's own OpenAPI document, valid and invalid: never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{served.url}/docs.json")
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().path == path)
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def never_a_server_error(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=served.url, timeout=30)
        assert response.status_code < 500, (case.as_curl_command(), response.status_code, response.text[:500])

    never_a_server_error()
    assert calls > 0


def _batching(served: Served) -> tuple[float, float]:
    """Rows and model calls so far on the batched model endpoint, from the Prometheus histogram."""
    figures = {}
    for line in served.get("/metrics")[1].splitlines():
        if line.startswith("bentoml_service_adaptive_batch_size_") and 'method_name="probabilities"' in line:
            figures[line.split("{")[0].rsplit("_", 1)[-1]] = float(line.split()[-1])
    return figures.get("sum", 0.0), figures.get("count", 0.0)


def test_concurrent_single_flight_calls_share_model_calls(served: Served) -> None:
    rows_before, calls_before = _batching(served)
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(lambda _: served.call("/predict", {"flight": EXAMPLE})[0], range(320)))
    assert statuses == [200] * 320
    rows, calls = _batching(served)
    assert rows - rows_before == 320
    assert (rows - rows_before) / (calls - calls_before) > 1.5, (rows - rows_before, calls - calls_before)


def test_a_bad_date_is_refused_alone_and_fails_none_of_its_batch_mates(served: Served) -> None:
    """30 February passes each field's range; it must not reach (and fail) a batch shared with other callers."""
    bad = EXAMPLE | {"month": 2, "day": 30}
    bodies = [{"flight": bad if i == 16 else EXAMPLE} for i in range(32)]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda body: served.call("/predict", body), bodies))
    status, answer = answers[16]
    assert 400 <= status < 500 and "not a calendar date" in json.dumps(answer), (status, answer)
    assert [code for i, (code, _) in enumerate(answers) if i != 16] == [200] * 31


def _series(served: Served) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in served.get("/metrics")[1].splitlines()
        if line and not line.startswith("#")
    }


def test_unknown_paths_add_no_metric_series(served: Served) -> None:
    """A scanner's 404s must not grow /metrics: each distinct path used to add ~19 series."""
    served.get("/no-such-path-warmup")
    before = _series(served)
    paths = [f"/scan/{i}/{uuid}" for i, uuid in enumerate(os.urandom(8).hex() for _ in range(200))]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda path: served.get(path)[0], paths))
    assert statuses == [404] * 200
    after = _series(served)
    assert set(after) == set(before), sorted(set(after) ^ set(before))[:10]
    counter = next(k for k in after if k.startswith("flightdelay_unknown_path_requests_total"))
    assert after[counter] - before[counter] == 200


READ_ONLY_SERVE = """
set -e
mkdir -p "$BENTOML_HOME/prometheus_multiproc_dir"
for d in "$BENTOML_HOME" "$PYTHON_PREFIX"; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
mount -t tmpfs -o size=256m tmpfs "$BENTOML_HOME/prometheus_multiproc_dir"
mount -t tmpfs -o size=256m tmpfs "$TMPDIR"
exec "$PYTHON" -m bentoml serve "$BENTO" --host 127.0.0.1 --port "$PORT"
"""


def test_the_bento_serves_from_a_read_only_filesystem_but_the_deployments_volumes(
    served: Served, tmp_path: Path
) -> None:
    """The Deployment sets readOnlyRootFilesystem and mounts emptyDirs for what `bentoml serve` writes; so here:
    the Bento store, its home and the Python environment read-only, tmpfs for those two places alone."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here (unshare -m: {probe.stderr.decode().strip()}); the cluster checks it")
    deployment = yaml.safe_load((ROOT / "deploy" / "base" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/var/log/flightdelay", "/home/bentoml/prometheus_multiproc_dir", "/tmp"}
    port = bento.free_port()
    short = Path(tempfile.mkdtemp(prefix="ro-", dir="/tmp"))  # unix sockets go here: a path under 108 bytes
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "BENTOML_HOME": str(served.bento_home),
        "HOME": str(served.bento_home),
        "TMPDIR": str(short),
        "PYTHON": sys.executable,
        "PYTHON_PREFIX": sys.prefix,
        "BENTO": served.bento_tag,
        "PORT": str(port),
        "BENTOML_DO_NOT_TRACK": "true",
        "FLIGHTDELAY_PREDICTION_LOG": str(tmp_path / "log" / "predictions.jsonl"),
    }
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            ["unshare", "-m", "bash", "-c", READ_ONLY_SERVE], env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not bento.answers(f"{url}/readyz"):
            assert server.poll() is None, f"exited {server.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        again = Served(url, served.bento_tag, served.model_tag, served.bento_home, tmp_path / "log")
        status, answer = again.call("/predict", {"flight": EXAMPLE})
        assert status == 200, (answer, log.read_text()[-4000:])
        assert again.get("/metrics")[0] == 200
    finally:
        bento.stop(server)
        short.rmdir()
    assert "Read-only file system" not in log.read_text()


def _post_raw(url: str, path: str, *, declared: int | None, chunks: list[bytes]) -> tuple[int, str]:
    """POST ``chunks``: with a declared Content-Length (sending only what is given) or chunked, undeclared."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        if declared is None:
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            for chunk in chunks:
                connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.send(b"0\r\n\r\n")
        else:
            connection.putheader("Content-Length", str(declared))
            connection.endheaders()
            for chunk in chunks:
                connection.send(chunk)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_an_oversized_body_is_a_413_that_names_the_limit(served: Served) -> None:
    # Declared too large: refused from the headers, before the client sends the body.
    status, text = _post_raw(served.url, "/predict_batch", declared=5 * 2**20, chunks=[b'{"flights": ['])
    assert status == 413, text
    assert "request body is 5242880 bytes; the limit is 4194304 bytes" in text
    # Undeclared (chunked): refused once what arrived passes the limit.
    chunks = [b'{"flights": [', *[b" " * 2**20] * 4, b"]}"]
    status, text = _post_raw(served.url, "/predict_batch", declared=None, chunks=chunks)
    assert status == 413, text
    assert "the limit is 4194304 bytes" in text
    assert served.call("/predict", {"flight": EXAMPLE})[0] == 200  # and the server carries on


def test_sixty_seconds_of_sustained_load_without_an_error(served: Served) -> None:
    """Eight callers for 60 s, mixing single flights and batches; bounded by the deadline and a 30 s timeout."""
    deadline = time.monotonic() + 60
    single, batch = ("/predict", {"flight": EXAMPLE}), ("/predict_batch", {"flights": [EXAMPLE] * 50})

    def caller(index: int) -> tuple[int, list[int]]:
        done, failures = 0, []
        while time.monotonic() < deadline:
            path, body = batch if (index + done) % 7 == 0 else single
            status, _ = served.call(path, body)
            done += 1
            if status != 200:
                failures.append(status)
        return done, failures

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(caller, range(8)))
    total = sum(done for done, _ in results)
    failures = [status for _, statuses in results for status in statuses]
    assert failures == []
    assert total >= 600, f"only {total} requests in 60 s"
