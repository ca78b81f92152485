"""The deployed smoke test waits, bounded, for Argo CD / Flux to roll out the new version: a real local server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flightdelay import release


@pytest.fixture
def deployment() -> Iterator[tuple[str, list[str]]]:
    """A service that answers with v1 for its first three calls, then v2 (a rollout completing)."""
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            version = "v1-0123abcd" if len(served) < 3 else "v2-4567ef01"
            served.append(version)
            body = json.dumps([{"delay_probability": 0.2, "model_version": version}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_waits_until_the_new_version_answers(deployment: tuple[str, list[str]]) -> None:
    url, served = deployment
    said: list[str] = []
    release.wait_for_version(url, "2", {"month": 1}, said.append, timeout=5, every=0.05)
    assert served == ["v1-0123abcd"] * 3 + ["v2-4567ef01"]
    assert said == [f"{url} serves model version v2"]


def test_gives_up_after_the_timeout_naming_what_it_saw(deployment: tuple[str, list[str]]) -> None:
    url, _ = deployment
    with pytest.raises(release.ReleaseError, match=r"still does not serve model version v3 after 0 s \(last: v"):
        release.wait_for_version(url, "3", {"month": 1}, lambda _: None, timeout=0.3, every=0.05)


def test_an_unreachable_service_is_retried_then_named() -> None:
    with pytest.raises(release.ReleaseError, match="ConnectError"):
        release.wait_for_version("http://127.0.0.1:9", "2", {}, lambda _: None, timeout=0.2, every=0.05)
