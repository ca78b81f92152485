"""Service benchmark: the project's Bento against a floor baseline, same trees, same load. Prints figures.

Run with ``nox -s bench -- serve``. Every server runs on loopback, started here:

* ``bentoml``: the project's service (``flightdelay.service``), as ``nox -s serve`` runs it;
* ``bento-api``: the same service through BentoML's own request path, traced (``FLIGHTDELAY_DIRECT_JSON=0``,
  ``FLIGHTDELAY_TRACE_PREDICTIONS=1``): what ``DirectJSON`` and the tracing exclusion save;
* ``bento0``: a BentoML service with the same request model that answers a constant (``bare_bentoml.py``);
* ``fastapi``: FastAPI + uvicorn, 2 workers, the same ``serving.Predictor`` (features, the model), no logging;
* ``floor``: FastAPI + uvicorn, 2 workers, the same trees on a ready numpy row (``floor_baseline.py``);
* ``null``: an asyncio server answering fixed bytes, to measure the load generator's own ceiling.

The load generator (``load.py``: raw keep-alive sockets, one process) keeps ``c`` requests in flight
for a fixed time per level. Ratios compare figures taken in the same run, since these machines are shared.
The goals are those of the README's benchmark section; each is printed as met or not, and nothing fails.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from flightdelay.io.bento import free_port
from flightdelay.problem import PROBLEM

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32, 64)
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
BATCH = 1000
MEASURED = ("bentoml", "bento-api", "bento0", "fastapi", "floor")
SERVERS = (*MEASURED, "null")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server not ready:\n{log.read_text()}")


def load(url: str, concurrency: int, seconds: float, body: Path, path: str = "/predict") -> dict[str, float]:
    """One level of load from ``load.py`` in its own process (it must not share a GIL with anything)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/load.py"), url + path, str(concurrency), str(seconds), str(body)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def server_seconds(url: str, endpoint: str) -> tuple[float, float]:
    """The sum and count of BentoML's request-duration histogram for ``endpoint``, from ``/metrics``."""
    figures = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("bentoml_service_request_duration_seconds_") and f'endpoint="{endpoint}"' in line:
            kind = line.split("{")[0].rsplit("_", 1)[-1]
            if kind in figures:
                figures[kind] += float(line.split()[-1])
    return figures["sum"], figures["count"]


def batch_ms(url: str, size: int, body: Path) -> tuple[float, float]:
    """``/predict_batch`` with ``size`` flights, one caller for a few seconds: the median round trip over
    loopback, and the mean time the server itself reports (BentoML's request-duration histogram)."""
    body.write_text(json.dumps({"flights": [dict(PROBLEM.example)] * size}))
    load(url, 1, 1, body, "/predict_batch")  # warm-up
    before = server_seconds(url, "/predict_batch")
    result = load(url, 1, 3, body, "/predict_batch")
    after = server_seconds(url, "/predict_batch")
    count = after[1] - before[1]
    return result["p50_ms"], (after[0] - before[0]) / count * 1000 if count else float("nan")


def tree_rss_mib(pid: int) -> float:
    process = psutil.Process(pid)
    total: int = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    return total / 2**20


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


Results = dict[tuple[int, str], dict[str, float]]


def command_for(name: str, port: int) -> list[str]:
    workers = [sys.executable, str(ROOT / "benchmarks/workers.py")]
    bentoml = [sys.executable, "-m", "bentoml", "serve"]
    at = ["--host", "127.0.0.1", "--port", str(port)]
    return {
        "bentoml": [*bentoml, "flightdelay.service:FlightDelay", *at],
        "bento-api": [*bentoml, "flightdelay.service:FlightDelay", *at],
        "bento0": [*bentoml, "benchmarks.bare_bentoml:Bare", *at],
        "fastapi": [*workers, "benchmarks.fastapi_baseline:app", str(port), "2"],
        "floor": [*workers, "benchmarks.floor_baseline:app", str(port), "2"],
        "null": [sys.executable, str(ROOT / "benchmarks/null_server.py"), str(port)],
    }[name]


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a server and all its processes."""
    process = psutil.Process(pid)
    times = [p.cpu_times() for p in [process, *process.children(recursive=True)]]
    return float(sum(t.user + t.system for t in times))


def single_flights(urls: dict[str, str], pids: dict[str, int], body: Path) -> Results:
    print(f"\nsingle-flight POST /predict, {SECONDS:.0f} s per level, 2 workers each, {os.cpu_count()} cores")
    print("(CPU: the server's own CPU time per request, all its processes; less noisy than req/s on a shared machine)")
    header = (
        f"{'c':>4} {'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us':>7} {'vs floor':>9}"
    )
    print(header)
    results = {}
    for level in LEVELS:
        for name in MEASURED:
            before = tree_cpu_seconds(pids[name])
            results[level, name] = load(urls[name], level, SECONDS, body)
            used = tree_cpu_seconds(pids[name]) - before
            results[level, name]["cpu_us"] = used / max(results[level, name]["requests"], 1) * 1e6
        floor = results[level, "floor"]["rps"]
        for name in MEASURED:
            r = results[level, name]
            print(
                f"{level:>4} {name:<9} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                f"{r['errors']:>7.0f} {r['cpu_us']:>7.0f} {r['rps'] / floor:>9.2f}"
            )
    return results


def batches(urls: dict[str, str], body: Path) -> dict[tuple[str, int], float]:
    print("\nPOST /predict_batch, one caller, 3 s each: median round trip, mean server time (BentoML's histogram)")
    server_ms = {}
    for name in ("bentoml", "bento-api", "bento0"):
        for size in (1, 100, BATCH):
            trip, inside = batch_ms(urls[name], size, body)
            server_ms[name, size] = inside
            print(f"  {name:<9} {size:>5} flights: {trip:8.1f} ms round trip, {inside:8.1f} ms in the server")
    return server_ms


def goals(results: Results, server_ms: dict[tuple[str, int], float]) -> None:
    one = results[1, "bentoml"]
    print("\ngoals:")
    print(f"  c=1 p50 {one['p50_ms']:.1f} ms <= 5, p99 {one['p99_ms']:.1f} ms <= 15: ", end="")
    print(verdict(one["p50_ms"] <= 5 and one["p99_ms"] <= 15))
    for level in (32, 64):
        r = results[level, "bentoml"]
        ratio = r["rps"] / results[level, "floor"]["rps"]
        said = f"{ratio:.2f} x floor >= 0.8, {r['errors']:.0f} errors, p99 {r['p99_ms']:.0f} ms <= 100"
        print(f"  c={level} {said}: {verdict(ratio >= 0.8 and r['errors'] == 0 and r['p99_ms'] <= 100)}")
        floor_cpu, cpu = results[level, "floor"]["cpu_us"], r["cpu_us"]
        print(f"    (by CPU per request: the floor's {floor_cpu:.0f} us / {cpu:.0f} us = {floor_cpu / cpu:.2f})")
    shares = ", ".join(f"{results[c, 'bentoml']['rps'] / results[c, 'bento0']['rps']:.2f}" for c in LEVELS)
    print(f"  (the service's throughput against bare BentoML's at c={LEVELS}: {shares})")
    direct = ", ".join(f"{results[c, 'bentoml']['rps'] / results[c, 'bento-api']['rps']:.2f}" for c in LEVELS)
    print(f"  (against its own requests through BentoML's request path, traced: {direct})")
    ms = server_ms["bentoml", BATCH]
    said = "unknown (no request-duration figures on /metrics)" if math.isnan(ms) else verdict(ms <= 50)
    print(f"  {BATCH} flights in {ms:.0f} ms <= 50 (server time): {said}")


def environment(name: str, base: dict[str, str], tmp: Path) -> dict[str, str]:
    """A server's environment: each BentoML server its own BENTOML_HOME (the model store linked in), since a
    BentoML server empties its home's Prometheus directory when it starts, and so another's /metrics."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    home = tmp / f"bentoml-{name}"
    home.mkdir()
    (home / "models").symlink_to(Path(BentoMLContainer.bentoml_home.get()) / "models")
    env = base | {"BENTOML_HOME": str(home), "FLIGHTDELAY_PREDICTION_LOG": str(home / "predictions.jsonl")}
    if name == "bento-api":
        env |= {"FLIGHTDELAY_DIRECT_JSON": "0", "FLIGHTDELAY_TRACE_PREDICTIONS": "1"}
    return env


def main() -> int:
    import bentoml

    tag = (ROOT / "src/flightdelay/bento-tag.txt").read_text().strip()
    bundle = bentoml.models.get(tag).path
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "flight.json"
        body.write_text(json.dumps({"flight": dict(PROBLEM.example)}))
        env = dict(os.environ) | {
            "FLIGHTDELAY_BUNDLE": bundle,
            "OMP_NUM_THREADS": "1",  # as the service sets for itself
        }
        servers: dict[str, subprocess.Popen[bytes]] = {}
        urls = {}
        try:
            # One at a time: a BentoML server takes ports of its own while it starts, one of which could
            # be a port picked here for another server.
            for name in SERVERS:
                port = free_port()
                server_env = environment(name, env, Path(tmp))
                servers[name] = start(command_for(name, port), server_env, Path(tmp) / f"{name}.log")
                urls[name] = f"http://127.0.0.1:{port}"
                wait_ready(urls[name], servers[name], Path(tmp) / f"{name}.log")
            ceiling = load(urls["null"], 64, SECONDS, body)
            per_request_us = ceiling["driver_cpu_s"] / ceiling["requests"] * 1e6
            print(
                f"load generator (benchmarks/load.py, one process): ceiling {ceiling['rps']:.0f} req/s at c=64 "
                f"against a server that does nothing, {per_request_us:.0f} us of driver CPU per request"
            )
            results = single_flights(urls, {name: server.pid for name, server in servers.items()}, body)
            server_ms = batches(urls, Path(tmp) / "batch.json")
            before = tree_rss_mib(servers["bentoml"].pid)
            soak = load(urls["bentoml"], 32, SOAK_SECONDS, body)
            after = tree_rss_mib(servers["bentoml"].pid)
            print(
                f"\nsoak: {SOAK_SECONDS:.0f} s at c=32: {soak['rps']:.0f} req/s, {soak['errors']:.0f} errors, "
                f"server RSS {before:.0f} -> {after:.0f} MiB"
            )
            goals(results, server_ms)
        finally:
            for server in servers.values():
                server.terminate()
            for server in servers.values():
                server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
