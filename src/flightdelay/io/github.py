"""Posting the PR report as one sticky comment through GitHub's REST API.

Standard library only, so the comment workflow runs it from a checkout of the default branch
without installing the project: ``PYTHONPATH=src python -m flightdelay.io.github --pr 12 --body-file report.md``.
Reads ``GITHUB_API_URL``, ``GITHUB_REPOSITORY`` and ``GITHUB_TOKEN`` as Actions sets them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flightdelay.comment import MARKER

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_MAX_BODY = 65_536  # GitHub rejects longer comment bodies


class GitHubError(RuntimeError):
    """The API answered with an error, or could not be reached."""


@dataclass(frozen=True)
class Client:
    api_url: str
    repository: str
    token: str
    author: str = "github-actions[bot]"  # the login behind Actions' GITHUB_TOKEN
    timeout: float = 30.0

    @classmethod
    def from_environment(cls) -> Client:
        missing = [name for name in ("GITHUB_REPOSITORY", "GITHUB_TOKEN") if not os.environ.get(name)]
        if missing:
            raise GitHubError(f"set {', '.join(missing)} (Actions sets GITHUB_REPOSITORY; pass the token explicitly)")
        return cls(
            api_url=os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            repository=os.environ["GITHUB_REPOSITORY"],
            token=os.environ["GITHUB_TOKEN"],
            author=os.environ.get("PR_REPORT_AUTHOR", "github-actions[bot]"),
        )

    def request(self, method: str, url: str, payload: dict[str, Any] | None = None) -> tuple[Any, dict[str, str]]:
        """One API call; returns the decoded JSON and the response headers, or raises :class:`GitHubError`."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "flightdelay-pr-report")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                return (json.loads(body) if body else None), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise GitHubError(f"{method} {url} -> HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise GitHubError(f"{method} {url} -> {exc.reason}") from exc

    def comments(self, pr: int) -> list[dict[str, Any]]:
        """Every comment on the PR, following ``Link: rel="next"`` pages."""
        return self._pages(f"{self.api_url}/repos/{self.repository}/issues/{pr}/comments?per_page=100")

    def head_sha(self, pr: int) -> str:
        pull, _ = self.request("GET", f"{self.api_url}/repos/{self.repository}/pulls/{pr}")
        return str(pull["head"]["sha"])

    def upsert_comment(self, pr: int, body: str) -> tuple[str, int]:
        """Update the comment carrying the marker, or create it; returns ("updated"|"created", id)."""
        if not body.startswith(MARKER):
            body = f"{MARKER}\n{body}"
        if len(body) > _MAX_BODY:
            body = body[: _MAX_BODY - 200] + "\n\n… (truncated: the full report is in the run's artifacts)\n"
        # Only our own comment: anyone can paste the marker into theirs.
        mine = [
            c
            for c in self.comments(pr)
            if (c.get("body") or "").startswith(MARKER) and (c.get("user") or {}).get("login") == self.author
        ]
        if mine:
            comment_id = int(mine[0]["id"])
            self.request(
                "PATCH", f"{self.api_url}/repos/{self.repository}/issues/comments/{comment_id}", {"body": body}
            )
            return "updated", comment_id
        created, _ = self.request(
            "POST", f"{self.api_url}/repos/{self.repository}/issues/{pr}/comments", {"body": body}
        )
        return "created", int(created["id"])

    def approvals(self, run_id: int, environment: str) -> list[str]:
        """Who approved workflow run ``run_id`` for ``environment``: the logins in its review history.

        Needs ``actions: read`` for the job's token. A rejection ends the run before the job starts, so only
        approvals are kept.
        """
        reviews, _ = self.request("GET", f"{self.api_url}/repos/{self.repository}/actions/runs/{run_id}/approvals")
        logins = []
        for review in reviews or []:
            environments = {str(e.get("name")) for e in review.get("environments") or []}
            login = (review.get("user") or {}).get("login")
            if review.get("state") == "approved" and environment in environments and login and login not in logins:
                logins.append(str(login))
        return logins

    def _pages(self, url: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            page, headers = self.request("GET", next_url)
            found.extend(page)
            match = _NEXT.search(headers.get("Link", "") or headers.get("link", ""))
            next_url = match.group(1) if match else None
        return found

    def upsert_issue(self, title: str, body: str, label: str, marker: str) -> tuple[str, int]:
        """Update our open ``label`` issue that starts with ``marker``, or open one; ("updated"|"created", number)."""
        listed = self._pages(f"{self.api_url}/repos/{self.repository}/issues?state=open&labels={label}&per_page=100")
        mine = [
            i
            for i in listed
            if "pull_request" not in i
            and (i.get("body") or "").startswith(marker)
            and (i.get("user") or {}).get("login") == self.author
        ]
        body = body if body.startswith(marker) else f"{marker}\n{body}"
        if mine:
            number = int(mine[0]["number"])
            self.request(
                "PATCH", f"{self.api_url}/repos/{self.repository}/issues/{number}", {"title": title, "body": body}
            )
            return "updated", number
        created, _ = self.request(
            "POST", f"{self.api_url}/repos/{self.repository}/issues", {"title": title, "body": body, "labels": [label]}
        )
        return "created", int(created["number"])

    def upsert_pull(self, head: str, base: str, title: str, body: str) -> tuple[str, int, str]:
        """Update the open PR from ``head`` into ``base``, or open it; ("updated"|"created", number, URL)."""
        owner = self.repository.split("/")[0]
        listed = self._pages(
            f"{self.api_url}/repos/{self.repository}/pulls?state=open&head={owner}:{head}&base={base}&per_page=100"
        )
        if listed:
            number = int(listed[0]["number"])
            self.request(
                "PATCH", f"{self.api_url}/repos/{self.repository}/pulls/{number}", {"title": title, "body": body}
            )
            return "updated", number, str(listed[0].get("html_url", ""))
        created, _ = self.request(
            "POST",
            f"{self.api_url}/repos/{self.repository}/pulls",
            {"title": title, "head": head, "base": base, "body": body},
        )
        return "created", int(created["number"]), str(created.get("html_url", ""))


_CONCLUSIONS = {
    "success": "✅ succeeded",
    "failure": "❌ failed",
    "cancelled": "⚪ was cancelled",
    "timed_out": "❌ timed out",
    "action_required": "⚠️ needs approval",
    "startup_failure": "❌ failed to start",
}
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9])")


def neutralise(body: str) -> str:
    """Break every ``@name`` so that a report cannot mention or notify a person or a team."""
    return _MENTION.sub("@\u200b", body)


def trusted_comment(body: str, run_url: str, conclusion: str) -> str:
    """The report under a header the PR cannot forge: the pr run's own conclusion and link, from GitHub's event.

    Whatever a fork's code wrote into the artifact is data below that header, with its mentions broken.
    """
    report = neutralise(body.removeprefix(MARKER).lstrip("\n"))
    outcome = _CONCLUSIONS.get(conclusion, f"ended: {re.sub(r'[^a-z_]', '', conclusion)[:20] or 'unknown'}")
    link = run_url if re.fullmatch(r"https?://[\w.:/-]+", run_url) else ""
    where = f"[its `pr` run]({link})" if link else "its `pr` run"
    header = (
        f"> **The check of this commit {outcome}** ({where}). Everything below was produced by that run "
        "from the PR's own code; only this line comes from the default branch."
    )
    return f"{MARKER}\n{header}\n\n{report}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flightdelay.io.github", description=__doc__)
    parser.add_argument("--pr", required=True, help="pull request number")
    parser.add_argument("--body-file", type=Path, required=True, help="the report (markdown)")
    parser.add_argument("--expect-head-sha", help="refuse to post unless the PR's head is this commit")
    parser.add_argument("--run-url", help="the pr run's URL, from the workflow_run event (trusted header)")
    parser.add_argument("--run-conclusion", help="the pr run's conclusion, from the workflow_run event")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[1-9][0-9]{0,9}", args.pr.strip()):
        print(f"error: --pr must be a pull request number, got {args.pr!r}", file=sys.stderr)
        return 2
    pr = int(args.pr)
    try:
        body = args.body_file.read_text(encoding="utf-8")
        if args.run_conclusion is not None:
            body = trusted_comment(body, args.run_url or "", args.run_conclusion)
        client = Client.from_environment()
        if args.expect_head_sha and (head := client.head_sha(pr)) != args.expect_head_sha:
            # A newer push superseded this run; its own run will post. Nothing failed.
            print(f"not posting: PR #{pr}'s head is {head}, this report is for {args.expect_head_sha}")
            return 0
        action, comment_id = client.upsert_comment(pr, body)
    except (OSError, GitHubError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{action} comment {comment_id} on #{pr}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
