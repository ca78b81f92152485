"""A closed-loop HTTP/1.1 load generator for ``benchmarks/serve.py``: raw keep-alive sockets, one process.

``c`` connections each send the same pre-encoded request, read the whole response and send again, for
a fixed time; it prints one JSON line of throughput, latency percentiles and errors. Each request costs
the driver tens of microseconds (no HTTP library, no parsing beyond the status line and the length),
so it is far from its own ceiling when a server answers in milliseconds; ``serve.py`` measures that
ceiling against a server that answers without work, in the same run.

    python benchmarks/load.py URL CONCURRENCY SECONDS BODY_FILE
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status (chunked bodies are read to their end)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:] if line)}
    if b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding") == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def run(url: str, concurrency: int, seconds: float, body: bytes) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    message = request_bytes(host, port, parts.path or "/", body)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def connection(opened: asyncio.Event, previous: asyncio.Event | None) -> None:
        nonlocal errors
        if previous is not None:
            await previous.wait()
        reader, writer = await asyncio.open_connection(host, port)
        opened.set()
        try:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                writer.write(message)
                try:
                    status = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()

    # One connection after another, as a client's pool fills: opened all at once, they queue up together
    # and the first of the server's workers to wake accepts them all (and keeps them: keep-alive).
    events = [asyncio.Event() for _ in range(concurrency)]
    began = time.perf_counter()
    await asyncio.gather(*(connection(events[i], events[i - 1] if i else None) for i in range(concurrency)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [float("nan")]

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(0.5),
        "p99_ms": percentile(0.99),
        "errors": errors,
        "driver_cpu_s": time.process_time(),
        "elapsed_s": elapsed,
    }


def main() -> int:
    url, concurrency, seconds, body_file = sys.argv[1:5]
    result = asyncio.run(run(url, int(concurrency), float(seconds), Path(body_file).read_bytes()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
