"""Window verdicts: k of the last n windows judged against one model; a window judged again counts once."""

from __future__ import annotations

import json

import pytest

from flightdelay.core.windows import History, HistoryError, Record


def verdict(month: int, *, flagged: bool, model: str = "m1", recorded: str = "2026-01-01T00:00:00Z") -> Record:
    return Record(
        window=f"2013-{month:02d}",
        name=f"flights of 2013-{month:02d}",
        start=f"2013-{month:02d}-01T00:00:00Z",
        end=f"2013-{month + 1:02d}-01T00:00:00Z",
        model=model,
        flagged=flagged,
        causes=("prediction drift",) if flagged else (),
        recorded=recorded,
    )


def history(*records: Record) -> History:
    judged = History()
    for record in records:
        judged = judged.with_record(record)
    return judged


def test_one_flagged_window_is_not_enough_and_two_of_the_last_three_are() -> None:
    judged = history(verdict(4, flagged=True))
    assert not judged.tally("m1", 2, 3).due
    judged = judged.with_record(verdict(5, flagged=False))
    assert judged.tally("m1", 2, 3).flagged == 1
    judged = judged.with_record(verdict(6, flagged=True))
    tally = judged.tally("m1", 2, 3)
    assert tally.due and tally.flagged == 2
    assert tally.observed() == (
        "2 of the last 3 windows judged against this model flagged "
        "(2013-04: prediction drift; 2013-05: none; 2013-06: prediction drift)"
    )


def test_only_the_last_n_windows_count() -> None:
    judged = history(verdict(3, flagged=True), verdict(4, flagged=True), verdict(5, flagged=False))
    judged = judged.with_record(verdict(6, flagged=False))
    tally = judged.tally("m1", 2, 3)
    assert [r.window for r in tally.last] == ["2013-04", "2013-05", "2013-06"]
    assert not tally.due


def test_a_window_judged_again_replaces_its_verdict_and_does_not_count_twice() -> None:
    judged = history(verdict(4, flagged=True), verdict(4, flagged=True, recorded="2026-01-08T00:00:00Z"))
    assert len(judged.records) == 1 and judged.records[0].recorded == "2026-01-08T00:00:00Z"
    assert not judged.tally("m1", 2, 3).due
    # The data was fixed: the same window, judged again, now quiet.
    assert history(verdict(4, flagged=True), verdict(4, flagged=False)).tally("m1", 1, 1).flagged == 0


def test_a_new_model_starts_a_new_count() -> None:
    judged = history(verdict(4, flagged=True), verdict(5, flagged=True), verdict(6, flagged=True, model="m2"))
    assert judged.tally("m1", 2, 3).due
    fresh = judged.tally("m2", 2, 3)
    assert not fresh.due and [r.window for r in fresh.last] == ["2013-06"]
    assert fresh.observed().startswith("1 of the one window so far (of 3) judged against this model flagged")
    assert judged.judged("m2") == ["2013-06"]


def test_windows_are_ordered_by_their_end_whatever_order_they_were_judged_in() -> None:
    judged = history(verdict(6, flagged=False), verdict(4, flagged=True), verdict(5, flagged=True))
    assert [r.window for r in judged.records] == ["2013-04", "2013-05", "2013-06"]
    assert not judged.tally("m1", 2, 1 + 1).due  # the last two: 2013-05 flagged, 2013-06 not


def test_the_history_round_trips_through_its_json_lines() -> None:
    judged = history(verdict(4, flagged=True), verdict(5, flagged=False, model="m2"))
    text = judged.dumps()
    assert len(text.splitlines()) == 2
    assert History.parse(text, "history.jsonl") == judged
    assert json.loads(text.splitlines()[0])["causes"] == ["prediction drift"]


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("not json", "Expecting value"),
        ('["a list"]', "found list"),
        ('{"window": "2013-04"}', "expected the keys"),
        (verdict(4, flagged=True).as_json().replace("true", '"yes"'), "flagged must be true or false"),
    ],
)
def test_a_line_that_is_not_a_verdict_is_named_with_its_line_number(line: str, named: str) -> None:
    text = verdict(3, flagged=False).as_json() + "\n" + line + "\n"
    with pytest.raises(HistoryError, match=rf"history.jsonl line 2 is not a window verdict \(.*{named}"):
        History.parse(text, "history.jsonl")


def test_k_above_n_is_refused() -> None:
    with pytest.raises(ValueError, match="1 <= k <= n"):
        History().tally("m1", 3, 2)
