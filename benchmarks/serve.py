"""Service benchmark: BentoML against a plain FastAPI baseline, same model, same load. Prints figures.

Run with ``nox -s bench -- serve``. Both servers run on loopback with one worker each; an async
httpx driver keeps ``c`` requests in flight for a fixed time per concurrency level. Ratios compare
figures taken in the same run, since these machines are shared.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from flightdelay.io.bento import free_port
from flightdelay.problem import PROBLEM

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32, 64)
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


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


async def load(url: str, concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    body = {"flight": dict(PROBLEM.example)}
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    response = await client.post("/predict", json=body)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return Result(
        rps=len(ordered) / elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        errors=errors,
    )


def batch_times(url: str) -> dict[int, float]:
    times = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for size in (1, 100, 1000):
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                response = client.post("/predict_batch", json={"flights": [dict(PROBLEM.example)] * size})
                response.raise_for_status()
                samples.append(time.perf_counter() - started)
            times[size] = statistics.median(samples) * 1000
    return times


def tree_rss_mib(pid: int) -> float:
    process = psutil.Process(pid)
    total: int = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    return total / 2**20


def main() -> int:
    import bentoml

    tag = (ROOT / "src/flightdelay/bento-tag.txt").read_text().strip()
    bundle = bentoml.models.get(tag).path
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ) | {
            "FLIGHTDELAY_PREDICTION_LOG": f"{tmp}/predictions.jsonl",
            "FLIGHTDELAY_BUNDLE": bundle,
            "OMP_NUM_THREADS": "1",  # as the service sets for itself: a fair baseline, not a spinning one
        }
        bento_port, base_port = free_port(), free_port()
        servers = {
            "bentoml": start(
                [
                    sys.executable,
                    "-m",
                    "bentoml",
                    "serve",
                    "flightdelay.service:FlightDelay",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(bento_port),
                ],
                env,
                Path(tmp) / "bentoml.log",
            ),
            "fastapi": start(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "benchmarks.fastapi_baseline:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(base_port),
                    "--no-access-log",
                ],
                env,
                Path(tmp) / "fastapi.log",
            ),
        }
        urls = {"bentoml": f"http://127.0.0.1:{bento_port}", "fastapi": f"http://127.0.0.1:{base_port}"}
        try:
            for name, url in urls.items():
                wait_ready(url, servers[name], Path(tmp) / f"{name}.log")
            print(f"single-flight POST /predict, {SECONDS:.0f} s per level, one worker each")
            print(f"{'c':>4} {'server':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
            for level in LEVELS:
                results = {name: asyncio.run(load(url, level, SECONDS)) for name, url in urls.items()}
                for name, r in results.items():
                    print(f"{level:>4} {name:<8} {r.rps:>8.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>7}")
                ratio = results["bentoml"].rps / results["fastapi"].rps
                print(f"{'':>4} {'ratio':<8} {ratio:>8.2f}  (bentoml / fastapi throughput)")
            print("\nPOST /predict_batch (bentoml), median of 5:")
            for size, ms in batch_times(urls["bentoml"]).items():
                print(f"  {size:>5} rows: {ms:8.1f} ms")
            before = tree_rss_mib(servers["bentoml"].pid)
            soak = asyncio.run(load(urls["bentoml"], 32, SOAK_SECONDS))
            after = tree_rss_mib(servers["bentoml"].pid)
            print(
                f"\nsoak: {SOAK_SECONDS:.0f} s at c=32: {soak.rps:.0f} req/s, {soak.errors} errors, "
                f"server RSS {before:.0f} -> {after:.0f} MiB"
            )
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
