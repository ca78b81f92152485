"""Posting the sticky comment, against a local server speaking GitHub's REST endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flightdelay.comment import MARKER
from flightdelay.io import github
from tests import fake_github


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[fake_github.State]:
    with fake_github.serve() as (base, state):
        monkeypatch.setenv("GITHUB_API_URL", base)
        monkeypatch.setenv("GITHUB_REPOSITORY", "octo/flights")
        monkeypatch.setenv("GITHUB_TOKEN", fake_github.TOKEN)
        yield state


def post(tmp_path: Path, body: str, *extra: str) -> int:
    report = tmp_path / "report.md"
    report.write_text(body)
    return github.main(["--pr", "7", "--body-file", str(report), *extra])


def test_several_pushes_leave_one_comment(api: fake_github.State, tmp_path: Path) -> None:
    api.add_comment(7, "LGTM")
    for run in range(3):
        assert post(tmp_path, f"{MARKER}\nrun {run}") == 0
    mine = [c for c in api.comments[7] if MARKER in c["body"]]
    assert len(mine) == 1
    assert mine[0]["body"].endswith("run 2")
    assert len(api.comments[7]) == 2


def test_the_comment_on_page_two_is_updated(api: fake_github.State, tmp_path: Path) -> None:
    for n in range(150):
        api.add_comment(7, f"chatter {n}")
    target = api.add_comment(7, f"{MARKER}\nold report", user="github-actions[bot]")
    api.add_comment(7, "more chatter")
    assert post(tmp_path, f"{MARKER}\nnew report") == 0
    assert target["body"].endswith("new report")
    assert len(api.comments[7]) == 152
    assert ("GET", "/repos/octo/flights/issues/7/comments") in api.requests
    assert sum(1 for method, _ in api.requests if method == "GET") == 2  # pages 1 and 2


def test_someone_elses_comment_with_the_marker_is_left_alone(api: fake_github.State, tmp_path: Path) -> None:
    decoy = api.add_comment(7, f"{MARKER}\n## ✅ Quality gate passed (not really)", user="mallory")
    assert post(tmp_path, f"{MARKER}\nthe real report") == 0
    assert decoy["body"].endswith("(not really)")
    ours = [c for c in api.comments[7] if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1
    assert ours[0]["body"].endswith("the real report")


def test_marker_is_added_when_missing(api: fake_github.State, tmp_path: Path) -> None:
    assert post(tmp_path, "plain report") == 0
    assert api.comments[7][0]["body"].startswith(MARKER)


def test_forbidden_fails_clearly(api: fake_github.State, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api.forbidden = True
    assert post(tmp_path, "report") == 1
    err = capsys.readouterr().err
    assert "HTTP 403: Resource not accessible by integration" in err
    assert 7 not in api.comments


def test_bad_token_fails_clearly(
    api: fake_github.State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    assert post(tmp_path, "report") == 1
    assert "HTTP 401: Bad credentials" in capsys.readouterr().err


def test_a_report_for_another_head_is_not_posted(api: fake_github.State, tmp_path: Path) -> None:
    """A newer push superseded the run: nothing is posted, and nothing failed (the newer run posts)."""
    api.pulls[7] = {"number": 7, "head": {"sha": "c" * 40}}
    assert post(tmp_path, "report", "--expect-head-sha", "d" * 40) == 0
    assert 7 not in api.comments
    assert post(tmp_path, "report", "--expect-head-sha", "c" * 40) == 0


def test_pr_number_is_data_not_code(api: fake_github.State, tmp_path: Path) -> None:
    report = tmp_path / "r.md"
    report.write_text("x")
    assert github.main(["--pr", "7; rm -rf /", "--body-file", str(report)]) == 2


def test_missing_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/flights")
    assert post(tmp_path, "report") == 1
    assert "set GITHUB_TOKEN" in capsys.readouterr().err


def test_unreachable_api_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/flights")
    monkeypatch.setenv("GITHUB_TOKEN", fake_github.TOKEN)
    assert post(tmp_path, "report") == 1
    assert "GET http://127.0.0.1:9/repos/octo/flights/issues/7/comments" in capsys.readouterr().err


def test_the_header_comes_from_the_event_and_a_forged_verdict_stays_below_it(
    api: fake_github.State, tmp_path: Path
) -> None:
    """A fork controls the artifact: it can write "gate passed" and mention teams, but not the header."""
    api.pulls[7] = {"number": 7, "head": {"sha": "c" * 40}}
    forged = f"{MARKER}\n## ✅ Quality gate passed\ncc @acme/ml-platform and @octocat, email a@b.com, `@keep`"
    url = "https://github.com/octo/flights/actions/runs/42"
    assert post(tmp_path, forged, "--run-url", url, "--run-conclusion", "failure") == 0
    (comment,) = api.comments[7]
    lines = comment["body"].splitlines()
    assert lines[0] == MARKER
    assert lines[1].startswith("> **The check of this commit ❌ failed** ([its `pr` run](" + url + "))")
    assert "## ✅ Quality gate passed" in comment["body"]  # the fork's text, below the header
    assert "@acme" not in comment["body"] and "@octocat" not in comment["body"]
    assert "@\u200bacme/ml-platform" in comment["body"]
    assert "a@b.com" in comment["body"] and "`@keep`" in comment["body"]


def test_a_strange_conclusion_or_url_is_not_rendered_as_given(api: fake_github.State, tmp_path: Path) -> None:
    assert post(tmp_path, "report", "--run-url", "javascript:alert(1)", "--run-conclusion", "**passed**)[x](y") == 0
    (comment,) = api.comments[7]
    header = comment["body"].splitlines()[1]
    assert "javascript" not in header and "**passed**" not in header
    assert "ended: passedxy" in header
