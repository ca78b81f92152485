"""Shadow and A/B with two real built Bentos on loopback: production copies each request to the shadow and logs
its answers beside its own; an A/B front lets the other Bento answer a share; both answer on time while the
other Bento hangs and after it dies. And blue-green's pre-promotion check, asked of a real built Bento."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from flightdelay import ab, deploy, monitor, settings
from flightdelay.io import bento
from flightdelay.problem import EXAMPLE
from tests.conftest import ROOT, SAMPLE_PROBLEM
from tests.e2e.conftest import Project, clone_template, environment, own_home

pytestmark = pytest.mark.slow

SHADOW_TIMEOUT = 3.0  # a production answer that waited for the shadow would take at least this long


@dataclass
class Pair:
    project: Project
    production: str  # URLs
    shadow: str
    production_tag: str
    shadow_tag: str
    log: Path  # production's prediction log, where the shadow's answers land too
    ab: str  # an A/B front: the production Bento as variant A, the shadow's server as variant B
    ab_log: Path


def build(project: Project) -> str:
    """`bentoml build` of the checkout: a new Bento (a new version each time), its tag."""
    built = project.run(sys.executable, "-m", "bentoml", "build", "-f", "bentofile.yaml", "src", "--output", "tag")
    return re.findall(r"flightdelay-service:\w+", built.stdout)[-1]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("shadow")
    env = environment(tmp) | {"BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    project = clone_template(tmp / "repo", env)
    project.dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))
    project.dvc("checkout")
    project.cli("bento-model")
    shadow_tag, production_tag = build(project), build(project)
    assert shadow_tag != production_tag
    served = {k: v for k, v in project.env.items() if k != "PYTHONPATH"}
    log = tmp / "production.jsonl"
    with ExitStack() as stack:
        shadow = stack.enter_context(
            bento.running(
                shadow_tag,
                cwd=tmp,
                env=served
                | own_home(tmp / "bentoml", tmp / "home-shadow")
                | {"FLIGHTDELAY_PREDICTION_LOG": str(tmp / "shadow.jsonl")},
                output=tmp / "shadow.log",
            )
        )
        production_env = (
            served
            | own_home(tmp / "bentoml", tmp / "home-production")
            | {
                "FLIGHTDELAY_PREDICTION_LOG": str(log),
                "FLIGHTDELAY_SHADOW_URL": shadow,
                "FLIGHTDELAY_SHADOW_TIMEOUT": str(SHADOW_TIMEOUT),
            }
        )
        production = stack.enter_context(
            bento.running(production_tag, cwd=tmp, env=production_env, output=tmp / "production.log")
        )
        ab_env = (
            served
            | own_home(tmp / "bentoml", tmp / "home-ab")
            | {
                "FLIGHTDELAY_PREDICTION_LOG": str(tmp / "ab.jsonl"),
                "FLIGHTDELAY_AB_URL": shadow,
                "FLIGHTDELAY_AB_SHARE": "0.5",
                "FLIGHTDELAY_AB_TIMEOUT": "1",
            }
        )
        front = stack.enter_context(bento.running(production_tag, cwd=tmp, env=ab_env, output=tmp / "ab.log"))
        yield Pair(project, production, shadow, production_tag, shadow_tag, log, front, tmp / "ab.jsonl")


def post(url: str, path: str, body: object) -> tuple[int, object, float]:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read()), time.perf_counter() - started


def load(url: str, seconds: float, callers: int = 4) -> list[tuple[int, float]]:
    """Single-flight calls from ``callers`` threads for ``seconds``: each call's status and latency."""
    deadline = time.monotonic() + seconds

    def caller(_: int) -> list[tuple[int, float]]:
        done = []
        while time.monotonic() < deadline:
            status, _, took = post(url, "/predict", {"flight": EXAMPLE})
            done.append((status, took))
        return done

    with ThreadPoolExecutor(callers) as pool:
        return [call for calls in pool.map(caller, range(callers)) for call in calls]


def shadow_processes(url: str) -> list[psutil.Process]:
    """The shadow's `bentoml serve` and its workers, found by the port on its command line."""
    port = url.rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if "serve" in line and "--port" in line and port in line:
            return [process, *process.children(recursive=True)]
    raise AssertionError(f"no bentoml serve on port {port}")


def records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def shadow_counts(url: str, metric: str = "flightdelay_shadow_requests_total") -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.findall(rf'^{metric}\{{[^}}]*outcome="(\w+)"[^}}]*\}} (\S+)$', text, re.M)
    return {outcome: float(value) for outcome, value in found}


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


def settled(read: Callable[[], dict[str, float]], quiet: float = 1.0, timeout: float = 30.0) -> dict[str, float]:
    """A reading once it has stayed the same for ``quiet`` seconds: copies of earlier requests may be in flight."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError(f"still changing after {timeout:.0f} s: {last}")


def test_the_shadows_answers_are_logged_beside_productions_and_never_returned(pair: Pair) -> None:
    answered = [post(pair.production, "/predict", {"flight": EXAMPLE | {"day": 1 + d}})[1] for d in range(30)]
    _, batch, _ = post(pair.production, "/predict_batch", {"flights": [EXAMPLE, EXAMPLE | {"precip": 0.3}]})
    answers = [*answered, *batch]  # type: ignore[misc]
    assert {a["bento_tag"] for a in answers} == {pair.production_tag}  # type: ignore[index]
    ids = {a["request_id"] for a in answers}  # type: ignore[index]

    def logged() -> bool:
        found = records(pair.log) if pair.log.exists() else []
        return {r["request_id"] for r in found if r.get("variant") == "shadow"} >= ids

    wait_for(logged)
    by_variant: dict[str, dict[object, dict[str, object]]] = {"production": {}, "shadow": {}}
    for record in records(pair.log):
        by_variant["shadow" if record.get("variant") == "shadow" else "production"][record["request_id"]] = record
    for request_id in ids:
        production, shadow = by_variant["production"][request_id], by_variant["shadow"][request_id]
        assert shadow["input"] == production["input"]
        assert shadow["output"]["bento_tag"] == pair.shadow_tag  # type: ignore[index]
        # Both Bentos carry the pipeline's model: the same flight, the same probability.
        assert shadow["output"]["delay_probability"] == production["output"]["delay_probability"]  # type: ignore[index]
    assert shadow_counts(pair.production).get("answered", 0) >= 31
    # The monitor pairs them and finds the shadow in agreement.
    params = settings.load(pair.project.path / "params.yaml")
    params = params.model_copy(update={"monitor": params.monitor.model_copy(update={"min_pairs": 10})})
    result, _, _ = monitor.run(pair.project.path, params, log=pair.log)
    assert result.shadow is not None and result.shadow.pairs == len(ids)
    assert result.shadow.disagreement == 0.0 and result.shadow.verdict == "the shadow agrees with production"


def test_an_ab_front_lets_variant_b_answer_its_share_and_tags_each_answer(pair: Pair) -> None:
    answers = [post(pair.ab, "/predict", {"flight": EXAMPLE | {"day": 1 + d % 28}})[1] for d in range(60)]
    by_variant = {a["variant"]: a["bento_tag"] for a in answers}  # type: ignore[index]
    assert by_variant == {"a": pair.production_tag, "b": pair.shadow_tag}
    share = sum(a["variant"] == "b" for a in answers) / len(answers)  # type: ignore[index]
    assert 0.2 < share < 0.8  # a fair coin, 60 times
    for answer in answers:
        assert ab.assigned_to_b(answer["request_id"], 0.5) == (answer["variant"] == "b")  # type: ignore[index]
    ids = {a["request_id"]: a["variant"] for a in answers}  # type: ignore[index]
    wait_for(lambda: pair.ab_log.exists() and len(records(pair.ab_log)) >= len(ids))
    logged = {r["request_id"]: r for r in records(pair.ab_log)}
    assert {k: logged[k]["variant"] for k in ids} == ids
    assert {logged[k]["output"]["bento_tag"] for k in ids if ids[k] == "b"} == {pair.shadow_tag}  # type: ignore[index]
    assert shadow_counts(pair.ab, "flightdelay_ab_requests_total").get("answered", 0) == sum(
        v == "b" for v in ids.values()
    )


def measure(metric: dict[str, Any], url: str, args: dict[str, str]) -> bool:
    """One measurement of an Argo Rollouts ``web`` metric against ``url``: its request as written (method,
    headers, JSON body, timeout), then its success condition on the answer (no ``jsonPath``: the whole body)."""
    web = metric["provider"]["web"]
    assert "jsonPath" not in web, "this check reads the whole body"
    request = urllib.request.Request(
        url + urllib.parse.urlsplit(web["url"]).path,
        data=json.dumps(web["jsonBody"]).encode(),
        headers={h["key"]: h["value"] for h in web.get("headers") or []},
        method=web["method"],
    )
    with urllib.request.urlopen(request, timeout=web["timeoutSeconds"]) as response:
        result = json.loads(response.read())
    condition = re.sub(r"\{\{args\.([\w-]+)\}\}", lambda m: args[m.group(1)], metric["successCondition"])
    return all(holds(term.strip(), result) for term in condition.split("&&"))


def holds(term: str, result: dict[str, Any]) -> bool:
    """``result.<field> <op> <literal>``, the only shape of term the committed conditions use."""
    found = re.fullmatch(r'result\.(\w+) (==|>=|<=) ("[^"]*"|-?[\d.]+)', term)
    assert found, f"not a term this check reads: {term!r}"
    field, op, literal = found.groups()
    actual, expected = result[field], json.loads(literal)
    return bool(actual == expected if op == "==" else actual >= expected if op == ">=" else actual <= expected)


@pytest.mark.skipif(not SAMPLE_PROBLEM, reason="the blue-green check posts the sample problem's example")
def test_blue_green_promotes_a_preview_that_answers_as_pinned_and_no_other(pair: Pair) -> None:
    """The pre-promotion analysis, asked of a real built Bento as the controller would ask the preview."""
    manifests = deploy.render(ROOT / "deploy" / "production", strategy="blue-green")
    (template,) = (m for m in manifests if m["kind"] == "AnalysisTemplate")
    (metric,) = template["spec"]["metrics"]
    _, answer, _ = post(pair.production, "/predict", {"flight": EXAMPLE})
    served = str(answer["model_version"])  # type: ignore[index]
    assert measure(metric, pair.production, {"namespace": "flightdelay-production", "model-version": served})
    # A preview that answers with another version than the pin names is not promoted.
    assert not measure(metric, pair.production, {"namespace": "flightdelay-production", "model-version": "999"})


def test_production_answers_on_time_while_the_shadow_hangs_and_after_it_dies(pair: Pair) -> None:
    processes = shadow_processes(pair.shadow)
    before = settled(lambda: shadow_counts(pair.production))
    for process in processes:
        os.kill(process.pid, signal.SIGSTOP)  # accepts connections (the kernel's backlog), answers nothing
    hung = load(pair.production, seconds=8)
    assert hung and {status for status, _ in hung} == {200}
    slowest = max(took for _, took in hung)
    assert slowest < SHADOW_TIMEOUT / 2, f"a production answer took {slowest:.2f} s while the shadow hung"
    for process in processes:
        os.kill(process.pid, signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)
    dead = load(pair.production, seconds=5)
    assert dead and {status for status, _ in dead} == {200}
    slowest = max(took for _, took in dead)
    assert slowest < SHADOW_TIMEOUT / 2, f"a production answer took {slowest:.2f} s after the shadow died"
    # With variant B dead, the A/B front answers everything itself, and says so.
    fallback = [post(pair.ab, "/predict", {"flight": EXAMPLE})[1] for _ in range(20)]
    assert {(a["variant"], a["bento_tag"]) for a in fallback} == {("a", pair.production_tag)}  # type: ignore[index]
    assert shadow_counts(pair.ab, "flightdelay_ab_requests_total").get("failed", 0) >= 1
    # Every request's copy ends answered, failed, timed out or skipped (beyond the copies in flight): none is
    # queued without bound, none is lost uncounted.
    expected = sum(before.values()) + len(hung) + len(dead)
    deadline = time.monotonic() + SHADOW_TIMEOUT + 10
    while sum(shadow_counts(pair.production).values()) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    counts = settled(lambda: shadow_counts(pair.production))
    assert sum(counts.values()) == expected, (before, counts, len(hung), len(dead))
    assert counts.get("failed", 0) > before.get("failed", 0) and counts.get("timeout", 0) > before.get("timeout", 0)
