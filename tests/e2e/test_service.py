"""The service as it ships: `bentoml build` from the pipeline's model, served from the built Bento."""

from __future__ import annotations

import http.client
import json
import math
import os
import re
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
from flightdelay.problem import EXAMPLE, schemas
from flightdelay.serving import Predictor
from tests.conftest import ROOT
from tests.e2e.conftest import clone_template, environment, own_home

pytestmark = pytest.mark.slow


@dataclass
class Served:
    url: str
    bento_tag: str
    model_tag: str
    bento_home: Path
    log: Path
    server_log: Path

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
        yield Served(url, bento_tag, model_tag, tmp / "bentoml", log, tmp / "serve.log")


@pytest.fixture(scope="module")
def through_bentoml(served: Served) -> Iterator[Served]:
    """The same Bento with ``DirectJSON`` off, in a home of its own: every request takes BentoML's own path."""
    tmp = served.bento_home.parent
    home = tmp / "bentoml-api"
    log = tmp / "predictions-api.jsonl"
    env = (
        {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        | own_home(served.bento_home, home)
        | {
            "BENTOML_DO_NOT_TRACK": "true",
            "FLIGHTDELAY_PREDICTION_LOG": str(log),
            "FLIGHTDELAY_DIRECT_JSON": "0",
        }
    )
    with bento.running(served.bento_tag, cwd=tmp, env=env, output=tmp / "serve-api.log") as url:
        yield Served(url, served.bento_tag, served.model_tag, home, log, tmp / "serve-api.log")


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


UNKNOWN = "(not in the reference tables)"
# Each kind of bad request: where it goes, the status, and the problems (field as sent, start of the message).
BAD_REQUESTS = [
    pytest.param(
        "/predict",
        {"flight": {k: v for k, v in EXAMPLE.items() if k != "dest"}},
        400,
        [("flight.dest", "Field required")],
        id="missing field",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"gate": "B12"}},
        400,
        [("flight.gate", "Extra inputs are not permitted")],
        id="extra field",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"month": "October"}},
        400,
        [("flight.month", "Input should be a valid integer")],
        id="wrong type",
    ),
    pytest.param(  # json.dumps writes NaN and Infinity, as some clients do
        "/predict",
        {"flight": EXAMPLE | {"temp": math.nan}},
        400,
        [("flight.temp", "Input should be a finite number")],
        id="NaN",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"wind_speed": math.inf}},
        400,
        [("flight.wind_speed", "Input should be a finite number")],
        id="infinity",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"distance": -5}},
        400,
        [("flight.distance", "Input should be greater than 0")],
        id="out of range",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"month": 2, "day": 30}},
        400,
        [("flight.day", "2013-02-30 is not a calendar date (day is out of range for month)")],
        id="30 February",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"carrier": "ZZ"}},
        400,
        [("flight.carrier", f"unknown carrier 'ZZ' {UNKNOWN}")],
        id="unknown carrier",
    ),
    pytest.param(
        "/predict",
        {"flight": EXAMPLE | {"origin": "XYZ"}},
        400,
        [("flight.origin", f"unknown origin 'XYZ' {UNKNOWN}")],
        id="unknown origin",
    ),
    pytest.param(
        "/predict_batch",
        {"flights": [EXAMPLE, EXAMPLE | {"carrier": "ZZ"}, EXAMPLE, EXAMPLE | {"origin": "XYZ"}]},
        400,
        [
            ("flights[1].carrier", f"unknown carrier 'ZZ' {UNKNOWN}"),
            ("flights[3].origin", f"unknown origin 'XYZ' {UNKNOWN}"),
        ],
        id="unknown codes in a batch",
    ),
    pytest.param(
        "/predict_batch",
        {"flights": [EXAMPLE, EXAMPLE, EXAMPLE | {"distance": -5}]},
        400,
        [("flights[2].distance", "Input should be greater than 0")],
        id="out of range in a batch",
    ),
    pytest.param(
        "/predict_batch",
        {"flights": []},
        400,
        [("flights", "List should have at least 1 item after validation, not 0")],
        id="empty batch",
    ),
    pytest.param(
        "/predict_batch",
        {"flights": [EXAMPLE] * 1001},
        400,
        [("flights", "List should have at most 1000 items after validation, not 1001")],
        id="batch over 1,000",
    ),
    pytest.param("/predict", {}, 400, [("flight", "Field required")], id="no flight"),
    pytest.param("/predict", b'{"flight": {', 400, [(None, "Invalid JSON: EOF while parsing")], id="malformed JSON"),
    pytest.param("/predict_flights", {"flights": [EXAMPLE]}, 404, [], id="unknown path"),
]


def error_of(answer: Any, status: int) -> dict[str, Any]:
    """The error of an error response, after checking that it has the one shape."""
    assert isinstance(answer, dict), answer
    assert set(answer) == {"error"}, answer
    error = answer["error"]
    assert set(error) == {"status", "message", "problems"}, answer
    assert error["status"] == status, answer
    assert isinstance(error["message"], str) and error["message"], answer
    assert all(set(problem) == {"field", "message"} for problem in error["problems"]), answer
    return dict(error)


@pytest.mark.parametrize(("path", "body", "status", "problems"), BAD_REQUESTS)
def test_bad_input_is_a_4xx_in_one_shape_that_names_each_field_as_sent(
    served: Served, path: str, body: Any, status: int, problems: list[tuple[str | None, str]]
) -> None:
    code, answer = served.call(path, body)
    assert code == status, answer
    error = error_of(answer, status)
    got = [(p["field"], p["message"]) for p in error["problems"]]
    assert [field for field, _ in got] == [field for field, _ in problems], answer
    assert all(said.startswith(message) for (_, said), (_, message) in zip(got, problems, strict=True)), answer
    if path == "/predict":  # one flight: no batch index in anything the caller reads
        assert "flights" not in json.dumps(answer), answer


def _without_request_ids(answer: Any) -> Any:
    if isinstance(answer, list):
        return [_without_request_ids(a) for a in answer]
    if isinstance(answer, dict):
        return {k: _without_request_ids(v) for k, v in answer.items() if k != "request_id"}
    return answer


def test_the_direct_path_answers_every_request_as_bentomls_own_path(served: Served, through_bentoml: Served) -> None:
    """``DirectJSON`` runs the API methods without BentoML's request path: the same status and the same JSON
    for every request, good or bad (BentoML's spaced JSON of a list is the same JSON)."""
    spread = [EXAMPLE | {"sched_dep_time": 500 + 100 * (i % 18)} for i in range(150)]
    good = [
        ("/predict", {"flight": EXAMPLE}),
        ("/predict", json.dumps({"flight": EXAMPLE}, indent=2)),
        ("/predict_batch", {"flights": [EXAMPLE, EXAMPLE | {"carrier": "AA", "dest": "LAX"}]}),
        ("/predict_batch", {"flights": spread}),  # scored off the event loop
        ("/predict", b""),
    ]
    bad = [(param.values[0], param.values[1]) for param in BAD_REQUESTS]
    for path, body in [*good, *bad]:
        (status, direct), (bentomls_status, bentomls) = served.call(path, body), through_bentoml.call(path, body)
        assert status == bentomls_status, (path, str(body)[:200], direct, bentomls)
        assert _without_request_ids(direct) == _without_request_ids(bentomls), (path, str(body)[:200])
    assert through_bentoml.call("/predict", {"flight": EXAMPLE})[0] == 200  # it did answer, through BentoML


_STAMPED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\S* \[[A-Z]+\] ")


def _logged(path: str, status: int, problems: list[tuple[str | None, str]]) -> str:
    """How the server log's line for a refused request starts: the request, the status, the first problem."""
    if not problems:
        return f"POST {path} {status}: Not Found"
    field, message = problems[0]
    return f"POST {path} {status}: {field + ': ' if field else ''}{message}"


def _any_worker(logged: str) -> str:
    """Log text with the worker's number (``[entry_service:FlightDelay:2]``) as N: either worker may answer."""
    return re.sub(r"\[entry_service:FlightDelay:\d+\]", "[entry_service:FlightDelay:N]", logged)


def test_each_client_error_logs_one_line_and_no_traceback(served: Served) -> None:
    """Bad requests are the callers' mistakes: one line each in the server log (which says what was wrong), and
    no traceback. Before, each wrote an [ERROR] entry with a traceback (two for an unknown carrier)."""
    start = served.server_log.stat().st_size
    sent = [(param.values[0], param.values[1], param.values[2], param.values[3]) for param in BAD_REQUESTS]
    for path, body, status, _ in sent:
        assert served.call(path, body)[0] == status
    status, _ = _post_raw(served.url, "/predict_batch", declared=5 * 2**20, chunks=[b'{"flights": ['])
    assert status == 413
    expected = [_logged(path, status, problems) for path, _, status, problems in sent]
    expected.append("POST /predict_batch 413: request body is 5242880 bytes; the limit is 4194304 bytes")

    deadline = time.monotonic() + 10
    while True:
        with served.server_log.open("rb") as log:
            log.seek(start)
            lines = log.read().decode().splitlines()
        warned = [line for line in lines if "[WARNING]" in line]
        if len(warned) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not [line for line in lines if "Traceback" in line or "[ERROR]" in line], lines
    assert [line for line in lines if not _STAMPED.match(line)] == []  # every entry is a single line
    assert len(warned) == len(expected), warned
    for line, start_of_entry in zip(warned, expected, strict=True):
        assert f"[WARNING] [entry_service:FlightDelay:N] {start_of_entry}" in _any_worker(line), (line, start_of_entry)


def test_the_readmes_error_examples_are_what_the_service_answers(served: Served) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The model service\n", 1)[1].split("\n## ", 1)[0]
    shown = [json.loads(line) for line in section.splitlines() if line.strip().startswith('{"error":')]
    batch = [EXAMPLE, EXAMPLE, EXAMPLE | {"carrier": "ZZ"}, EXAMPLE | {"origin": "XYZ"}]
    answered = [
        served.call("/predict", {"flight": EXAMPLE | {"carrier": "ZZ"}})[1],
        served.call("/predict_batch", {"flights": batch})[1],
        json.loads(_post_raw(served.url, "/predict_batch", declared=5 * 2**20, chunks=[b'{"flights": ['])[1]),
    ]
    assert shown == answered
    logged = next(line for line in section.splitlines() if "[WARNING]" in line)
    entry = logged.strip().split(" ", 1)[1].split(" (trace=")[0]  # without the time and the trace ids
    assert entry.startswith("[WARNING] [entry_service:FlightDelay:1] POST /predict 400: flight.carrier: ")
    assert _any_worker(entry) in _any_worker(served.server_log.read_text())


def test_the_openapi_page_describes_every_request_field(served: Served) -> None:
    status, spec = served.get("/docs.json")
    assert status == 200
    flight = json.loads(spec)["components"]["schemas"]["Flight"]
    described = {name: prop.get("description") for name, prop in flight["properties"].items()}
    assert list(described) == list(schemas.REQUEST_COLUMNS)
    assert described == schemas.REQUEST_DESCRIPTIONS
    assert described["tail_leg_of_day"].startswith("from the schedule: how many earlier NYC departures")


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


def test_concurrent_single_flight_calls_each_get_the_same_answer(served: Served) -> None:
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: served.call("/predict", {"flight": EXAMPLE}), range(320)))
    assert [status for status, _ in answers] == [200] * 320
    assert len({answer["delay_probability"] for _, answer in answers}) == 1
    assert len({answer["request_id"] for _, answer in answers}) == 320


def test_a_large_batch_is_scored_off_the_event_loop_with_the_single_calls_answers(served: Served) -> None:
    """Past INLINE_MAX_ROWS the batch is scored in a thread, and its trees on the model's threads."""
    flights = [EXAMPLE | {"sched_dep_time": 500 + 7 * i % 60 + 100 * (i % 18)} for i in range(250)]
    status, answers = served.call("/predict_batch", {"flights": flights})
    assert status == 200, answers
    singles = [served.call("/predict", {"flight": flight})[1]["delay_probability"] for flight in flights[::25]]
    assert [a["delay_probability"] for a in answers[::25]] == pytest.approx(singles, abs=1e-12)
    assert len({a["delay_probability"] for a in answers}) > 10


def test_a_bad_date_is_refused_alone_and_fails_none_of_its_batch_mates(served: Served) -> None:
    """30 February passes each field's range; it must be refused alone, never fail another caller's flights."""
    bad = EXAMPLE | {"month": 2, "day": 30}
    bodies = [{"flight": bad if i == 16 else EXAMPLE} for i in range(32)]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda body: served.call("/predict", body), bodies))
    status, answer = answers[16]
    assert status == 400, answer
    assert [p["field"] for p in error_of(answer, 400)["problems"]] == ["flight.day"], answer
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
            ["unshare", "-m", "bash", "-c", READ_ONLY_SERVE],
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not bento.answers(f"{url}/readyz"):
            assert server.poll() is None, f"exited {server.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        again = Served(url, served.bento_tag, served.model_tag, served.bento_home, tmp_path / "log", log)
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
    error = error_of(json.loads(text), 413)
    assert error["message"] == "request body is 5242880 bytes; the limit is 4194304 bytes (at most 1000 flights)"
    assert error["problems"] == []
    # Undeclared (chunked): refused once what arrived passes the limit.
    chunks = [b'{"flights": [', *[b" " * 2**20] * 4, b"]}"]
    status, text = _post_raw(served.url, "/predict_batch", declared=None, chunks=chunks)
    assert status == 413, text
    error = error_of(json.loads(text), 413)
    assert error["message"].startswith("request body is more than "), error
    assert error["message"].endswith("bytes; the limit is 4194304 bytes (at most 1000 flights)"), error
    assert error["problems"] == []
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
