"""A local HTTP server that speaks the parts of GitHub's REST API the project uses.

Issue comments (list with ``Link`` pagination, create, update), issues (list by label, create,
update), and pull requests (read, list by head, create, update), with the real paths, status codes
and payload shapes. Tests point ``GITHUB_API_URL`` at it.
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
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
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
            for method, pattern, handle in routes:
                match = re.fullmatch(pattern, url.path)
                if match and self.command == method:
                    handle(self, match, parse_qs(url.query))
                    return
            self._send(404, {"message": "Not Found"})

        def _list_comments(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            self._list(int(match["n"]), urlsplit(self.path).path, query)

        def _create_comment(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            body = self._body().get("body")
            if not isinstance(body, str):
                self._send(422, {"message": "Invalid request. 'body' is required."})
                return
            self._send(201, state.add_comment(int(match["n"]), body, user="github-actions[bot]"))

        def _update_comment(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            target = int(match["n"])
            for items in state.comments.values():
                for item in items:
                    if item["id"] == target:
                        item["body"] = self._body().get("body", item["body"])
                        self._send(200, item)
                        return
            self._send(404, {"message": "Not Found"})

        def _get_pull(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            pull = state.pulls.get(int(match["n"]))
            self._send(200, pull) if pull else self._send(404, {"message": "Not Found"})

        def _update_pull(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            pull = state.pulls.get(int(match["n"]))
            if pull is None:
                self._send(404, {"message": "Not Found"})
                return
            pull.update({k: v for k, v in self._body().items() if k in ("title", "body")})
            self._send(200, pull)

        def _list_pulls(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            head, base_ref = query.get("head", [None])[0], query.get("base", [None])[0]
            found = [
                p
                for p in state.pulls.values()
                if p["state"] == "open"
                and (head is None or head == f"{match['owner']}:{p['head']['ref']}")
                and (base_ref is None or base_ref == p["base"]["ref"])
            ]
            self._send(200, found)

        def _list_issues(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            labels = set(filter(None, query.get("labels", [""])[0].split(",")))
            found = [
                i for i in state.issues.values() if i["state"] == "open" and labels <= {x["name"] for x in i["labels"]}
            ]
            self._send(200, found)

        def _create_issue(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            data = self._body()
            if not isinstance(data.get("title"), str):
                self._send(422, {"message": "Invalid request. 'title' is required."})
                return
            state.next_id += 1
            number = len(state.issues) + len(state.pulls) + 1
            state.issues[number] = {
                "id": state.next_id,
                "number": number,
                "title": data["title"],
                "body": data.get("body", ""),
                "state": "open",
                "labels": [{"name": name} for name in data.get("labels", [])],
                "user": {"login": "github-actions[bot]"},
            }
            self._send(201, state.issues[number])

        def _update_issue(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            issue = state.issues.get(int(match["n"]))
            if issue is None:
                self._send(404, {"message": "Not Found"})
                return
            issue.update({k: v for k, v in self._body().items() if k in ("title", "body", "state")})
            self._send(200, issue)

        def _create_pull(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            data = self._body()
            missing = [key for key in ("title", "head", "base") if not isinstance(data.get(key), str)]
            if missing:
                self._send(422, {"message": f"Invalid request. {missing} required."})
                return
            if any(p["head"]["ref"] == data["head"] and p["state"] == "open" for p in state.pulls.values()):
                self._send(422, {"message": f"A pull request already exists for {data['head']}."})
                return
            number = len(state.issues) + len(state.pulls) + 1
            state.pulls[number] = {
                "number": number,
                "title": data["title"],
                "body": data.get("body", ""),
                "state": "open",
                "head": {"ref": data["head"], "sha": "0" * 40},
                "base": {"ref": data["base"]},
                "html_url": f"https://github.com/acme/flightdelay/pull/{number}",
                "user": {"login": "github-actions[bot]"},
            }
            self._send(201, state.pulls[number])

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

    repo = r"/repos/(?P<owner>[^/]+)/[^/]+"
    routes = [
        ("GET", rf"{repo}/issues/(?P<n>\d+)/comments", Handler._list_comments),
        ("POST", rf"{repo}/issues/(?P<n>\d+)/comments", Handler._create_comment),
        ("PATCH", rf"{repo}/issues/comments/(?P<n>\d+)", Handler._update_comment),
        ("GET", rf"{repo}/pulls/(?P<n>\d+)", Handler._get_pull),
        ("PATCH", rf"{repo}/pulls/(?P<n>\d+)", Handler._update_pull),
        ("GET", rf"{repo}/pulls", Handler._list_pulls),
        ("POST", rf"{repo}/pulls", Handler._create_pull),
        ("GET", rf"{repo}/issues", Handler._list_issues),
        ("POST", rf"{repo}/issues", Handler._create_issue),
        ("PATCH", rf"{repo}/issues/(?P<n>\d+)", Handler._update_issue),
    ]
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
