"""A local HTTP server that speaks the parts of GitHub's REST API the project uses.

Issue comments (list with ``Link`` pagination, create, update) and pull requests (read), with
the real paths, status codes and payload shapes. Tests point ``GITHUB_API_URL`` at it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghs_test_token"


@dataclass
class State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    forbidden: bool = False
    next_id: int = 1000
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add_comment(self, issue: int, body: str, user: str = "someone") -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "user": {"login": user}}
        self.comments.setdefault(issue, []).append(comment)
        return comment


def _handler(state: State, base: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Bad credentials", "status": "401"})
                return False
            if state.forbidden and self.command != "GET":
                self._send(403, {"message": "Resource not accessible by integration", "status": "403"})
                return False
            return True

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            try:
                data = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                data = None
            return data if isinstance(data, dict) else {}

        def _route(self) -> None:
            url = urlsplit(self.path)
            state.requests.append((self.command, url.path))
            if not self._authorised():
                return
            comments = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", url.path)
            comment = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", url.path)
            pull = re.fullmatch(r"/repos/[^/]+/[^/]+/pulls/(\d+)", url.path)
            if comments and self.command == "GET":
                self._list(int(comments.group(1)), url.path, parse_qs(url.query))
            elif comments and self.command == "POST":
                body = self._body().get("body")
                if not isinstance(body, str):
                    self._send(422, {"message": "Invalid request. 'body' is required."})
                    return
                self._send(201, state.add_comment(int(comments.group(1)), body, user="github-actions[bot]"))
            elif comment and self.command == "PATCH":
                target = int(comment.group(1))
                for items in state.comments.values():
                    for item in items:
                        if item["id"] == target:
                            item["body"] = self._body().get("body", item["body"])
                            self._send(200, item)
                            return
                self._send(404, {"message": "Not Found"})
            elif pull and self.command == "GET" and int(pull.group(1)) in state.pulls:
                self._send(200, state.pulls[int(pull.group(1))])
            else:
                self._send(404, {"message": "Not Found"})

        def _list(self, issue: int, path: str, query: dict[str, list[str]]) -> None:
            per_page = min(int(query.get("per_page", ["30"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            items = state.comments.get(issue, [])
            last = max((len(items) + per_page - 1) // per_page, 1)
            links = []
            if page < last:
                links.append(f'<{base}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
                links.append(f'<{base}{path}?per_page={per_page}&page={last}>; rel="last"')
            headers = {"Link": ", ".join(links)} if links else {}
            self._send(200, items[(page - 1) * per_page : page * per_page], headers)

        do_GET = do_POST = do_PATCH = _route

    return Handler


@contextmanager
def serve() -> Iterator[tuple[str, State]]:
    """A running fake API on loopback: yields its base URL and its state."""
    state = State()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    server.RequestHandlerClass = _handler(state, base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, state
    finally:
        server.shutdown()
        server.server_close()
