"""A local HTTP server that speaks the parts of GitHub's REST API the project uses.

Issue comments (list with ``Link`` pagination, create, update), issues (list by label, create,
update), pull requests (read, list by head, create, update), workflow-run artifacts (list by run and
name, download through a redirect as ``actions/download-artifact`` does) and a run's environment approvals
(the review history of its deployment protection), with the real paths, status
codes and payload shapes. Tests point ``GITHUB_API_URL`` at it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghs_test_token"


@dataclass
class State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    approvals: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    forbidden: bool = False
    next_id: int = 1000
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add_artifact(self, run_id: int, name: str, archive: Path, head_sha: str) -> dict[str, Any]:
        """Publish a zip as artifact ``name`` of workflow run ``run_id``."""
        self.next_id += 1
        artifact = {
            "id": self.next_id,
            "node_id": f"MDg6QXJ0aWZhY3Q{self.next_id}",
            "name": name,
            "size_in_bytes": archive.stat().st_size,
            "expired": False,
            "created_at": "2026-11-29T12:00:00Z",
            "updated_at": "2026-11-29T12:00:00Z",
            "expires_at": "2026-12-13T12:00:00Z",
            "workflow_run": {"id": run_id, "head_sha": head_sha},
            "_archive": archive,
        }
        self.artifacts.append(artifact)
        return artifact

    def add_pull(self, number: int, head_ref: str, head_sha: str, base_ref: str = "main") -> dict[str, Any]:
        """An open pull request, as a user would have opened it."""
        self.pulls[number] = {
            "number": number,
            "title": f"PR {number}",
            "body": "",
            "state": "open",
            "head": {"ref": head_ref, "sha": head_sha},
            "base": {"ref": base_ref},
            "html_url": f"https://github.com/acme/flightdelay/pull/{number}",
            "user": {"login": "someone"},
        }
        return self.pulls[number]

    def approve(self, run_id: int, environment: str, user: str, state: str = "approved") -> None:
        """A required reviewer's decision on run ``run_id``'s deployment to ``environment``."""
        self.next_id += 1
        self.approvals.setdefault(run_id, []).append(
            {
                "environments": [{"id": self.next_id, "name": environment, "url": "", "html_url": ""}],
                "state": state,
                "comment": "",
                "user": {"login": user, "id": self.next_id, "type": "User"},
            }
        )

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

        def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") not in (f"Bearer {TOKEN}", f"token {TOKEN}"):  # both schemes work
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
            blob = re.fullmatch(r"/_blobs/(?P<id>\d+)\.zip", url.path)
            if blob and self.command == "GET":  # a signed storage URL: no API token, as on GitHub
                self._download(int(blob["id"]))
                return
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

        def _public(self, artifact: dict[str, Any]) -> dict[str, Any]:
            api = f"{base}/repos/acme/flightdelay/actions/artifacts/{artifact['id']}"
            shown = {k: v for k, v in artifact.items() if not k.startswith("_")}
            return shown | {"url": api, "archive_download_url": f"{api}/zip"}

        def _list_artifacts(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            name = query.get("name", [None])[0]
            found = [
                self._public(a)
                for a in state.artifacts
                if a["workflow_run"]["id"] == int(match["run"]) and (name is None or a["name"] == name)
            ]
            self._send(200, {"total_count": len(found), "artifacts": found})

        def _artifact_zip(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            if not any(a["id"] == int(match["id"]) for a in state.artifacts):
                self._send(404, {"message": "Not Found"})
                return
            self.send_response(302)
            self.send_header("Location", f"{base}/_blobs/{match['id']}.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _download(self, artifact_id: int) -> None:
            found = [a for a in state.artifacts if a["id"] == artifact_id]
            if not found:
                self._send(404, {"message": "Not Found"})
                return
            self._send_bytes(200, found[0]["_archive"].read_bytes(), "application/zip")

        def _run_approvals(self, match: re.Match[str], query: dict[str, list[str]]) -> None:
            self._send(200, state.approvals.get(int(match["run"]), []))

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
        ("GET", rf"{repo}/actions/runs/(?P<run>\d+)/artifacts", Handler._list_artifacts),
        ("GET", rf"{repo}/actions/artifacts/(?P<id>\d+)/zip", Handler._artifact_zip),
        ("GET", rf"{repo}/actions/runs/(?P<run>\d+)/approvals", Handler._run_approvals),
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
