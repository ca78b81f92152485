"""The shadow copy, against real HTTP servers on loopback: answered, slow, failing, down, and too many at once."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flightdelay.io.bento import free_port
from flightdelay.shadow import Mirror, ShadowConfigError, ShadowSettings

FLIGHTS = [{"carrier": "UA", "dep_delay": 3}, {"carrier": "AA", "dep_delay": 40}]
IDS = ["a" * 32, "b" * 32]


@contextmanager
def shadow_server(
    behaviour: str, delay: float = 0.0, fields: dict[str, Any] | None = None
) -> Iterator[tuple[str, list[Any]]]:
    """A stand-in service speaking /predict_batch: ``answer``s (with ``fields`` added to each answer), or ``fail``s
    with a 500, after ``delay`` seconds."""
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, body))
            time.sleep(delay)
            if behaviour == "fail":
                payload, status = b'{"error": "boom"}', 500
            else:
                answers = [
                    {
                        "delay_probability": 0.25 * (i + 1),
                        "delayed": i > 0,
                        "model_version": "v9",
                        "request_id": f"s{i}",
                    }
                    | (fields or {})
                    for i, _ in enumerate(body["flights"])
                ]
                payload, status = json.dumps(answers).encode(), 200
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the copy gave up waiting (the slow case)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def mirrored(url: str, copies: int = 1, timeout: float = 1.0, limit: int = 64) -> tuple[list[Any], Counter[str], float]:
    """Send ``copies`` requests through a Mirror; return the log records, the outcomes and the longest send()."""
    records: list[Any] = []
    outcomes: Counter[str] = Counter()

    async def main() -> float:
        mirror = Mirror(ShadowSettings(url, timeout, limit), records.append, lambda o: outcomes.update([o]))
        longest = 0.0
        for _ in range(copies):
            started = time.perf_counter()
            mirror.send(FLIGHTS, IDS, 1234.5)
            longest = max(longest, time.perf_counter() - started)
        await mirror.close()
        return longest

    return records, outcomes, asyncio.run(main())


def test_the_shadows_answers_are_logged_under_productions_request_ids() -> None:
    with shadow_server("answer") as (url, received):
        records, outcomes, _ = mirrored(url)
    assert received == [("/predict_batch", {"flights": FLIGHTS})]
    assert outcomes == {"answered": 1}
    assert [(r["request_id"], r["variant"], r["input"]) for r in records] == [
        (IDS[0], "shadow", FLIGHTS[0]),
        (IDS[1], "shadow", FLIGHTS[1]),
    ]
    assert [r["output"]["delay_probability"] for r in records] == [0.25, 0.5]
    assert (records[1]["output"]["request_id"], records[1]["output"]["shadow_request_id"]) == (IDS[1], "s1")
    assert {r["time"] for r in records} == {1234.5}


@pytest.mark.parametrize(
    ("behaviour", "delay", "outcome"),
    [("fail", 0.0, "failed"), ("answer", 1.5, "timeout")],
    ids=["failing", "slow"],
)
def test_a_failing_or_slow_shadow_logs_nothing_and_is_counted(behaviour: str, delay: float, outcome: str) -> None:
    timeout = 0.3 if outcome == "timeout" else 10.0  # only the slow case is about time
    with shadow_server(behaviour, delay) as (url, _):
        records, outcomes, longest = mirrored(url, timeout=timeout)
    assert records == [] and outcomes == {outcome: 1}
    assert longest < 0.05  # send() only schedules the copy


def test_a_shadow_that_is_down_is_counted_as_failed() -> None:
    records, outcomes, _ = mirrored(f"http://127.0.0.1:{free_port()}")
    assert records == [] and outcomes == {"failed": 1}


def test_copies_beyond_the_limit_are_skipped_not_queued() -> None:
    with shadow_server("answer", delay=0.3) as (url, received):
        records, outcomes, _ = mirrored(url, copies=5, limit=2)
    assert outcomes == {"answered": 2, "skipped": 3}
    assert len(received) == 2 and len(records) == 4


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FLIGHTDELAY_SHADOW_URL": "shadow:3000"}, "is not an http(s) URL"),
        ({"FLIGHTDELAY_SHADOW_URL": "http://s", "FLIGHTDELAY_SHADOW_TIMEOUT": "soon"}, "could not convert"),
        ({"FLIGHTDELAY_SHADOW_URL": "http://s", "FLIGHTDELAY_SHADOW_TIMEOUT": "0"}, "must be in (0, 60]"),
        ({"FLIGHTDELAY_SHADOW_URL": "http://s", "FLIGHTDELAY_SHADOW_MAX_IN_FLIGHT": "0"}, "at least 1"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ShadowConfigError, match=re.escape(message)):
        ShadowSettings.from_environment(environ)


def test_settings() -> None:
    assert ShadowSettings.from_environment({}) is None
    assert ShadowSettings.from_environment({"FLIGHTDELAY_SHADOW_URL": " "}) is None
    assert ShadowSettings.from_environment({"FLIGHTDELAY_SHADOW_URL": "http://shadow:3000/"}) == ShadowSettings(
        "http://shadow:3000", 2.0, 64
    )
