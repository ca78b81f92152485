"""Variant B of an A/B test, against real HTTP servers on loopback: its answers, or A's when it fails."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest

from flightdelay.ab import ABConfigError, ABSettings, Challenger, assigned_to_b
from flightdelay.io.bento import free_port
from tests.unit.test_shadow import FLIGHTS, shadow_server


def asked(url: str, timeout: float = 1.0) -> tuple[list[dict[str, Any]] | None, Counter[str]]:
    outcomes: Counter[str] = Counter()

    async def main() -> list[dict[str, Any]] | None:
        challenger = Challenger(ABSettings(url, 0.5, timeout), lambda o: outcomes.update([o]))
        try:
            return await challenger.answer(FLIGHTS)
        finally:
            await challenger.close()

    return asyncio.run(main()), outcomes


def test_b_answers_with_its_own_probabilities_reduced_to_the_answers_fields() -> None:
    with shadow_server("answer", fields={"threshold": 0.4, "model": "m", "model_version": "9", "bento_tag": "b:1"}) as (
        url,
        received,
    ):
        answers, outcomes = asked(url)
    assert received == [("/predict_batch", {"flights": FLIGHTS})]
    assert outcomes == {"answered": 1}
    assert answers == [
        {
            "delay_probability": 0.25,
            "delayed": False,
            "threshold": 0.4,
            "model": "m",
            "model_version": "9",
            "bento_tag": "b:1",
        },
        {
            "delay_probability": 0.5,
            "delayed": True,
            "threshold": 0.4,
            "model": "m",
            "model_version": "9",
            "bento_tag": "b:1",
        },
    ]


@pytest.mark.parametrize(
    ("behaviour", "delay", "fields", "outcome"),
    [
        ("fail", 0.0, {}, "failed"),
        ("answer", 0.0, {}, "failed"),  # answers without the fields of an answer
        (
            "answer",
            0.0,
            {"threshold": 0.4, "model": "m", "model_version": "9", "bento_tag": None, "delayed": "yes"},
            "failed",
        ),
        ("answer", 1.5, {"threshold": 0.4, "model": "m", "model_version": "9", "bento_tag": None}, "timeout"),
    ],
    ids=["error", "not-an-answer", "bad-decision", "slow"],
)
def test_when_b_fails_a_answers(behaviour: str, delay: float, fields: dict[str, Any], outcome: str) -> None:
    # Only the slow case is about time: the others get a budget that a loaded machine cannot overrun.
    timeout = 0.3 if outcome == "timeout" else 10.0
    with shadow_server(behaviour, delay, fields=fields) as (url, _):
        answers, outcomes = asked(url, timeout=timeout)
    assert answers is None and outcomes == {outcome: 1}


def test_when_b_is_down_a_answers() -> None:
    answers, outcomes = asked(f"http://127.0.0.1:{free_port()}")
    assert answers is None and outcomes == {"failed": 1}


def test_the_assignment_follows_the_share_and_the_id() -> None:
    ids = [f"{(2 * i + 1) * 2**32 // 2000:08x}" + "0" * 24 for i in range(1000)]  # first 32 bits spread evenly
    assert sum(assigned_to_b(i, 0.3) for i in ids) == 300
    assert assigned_to_b("00000000" + "f" * 24, 0.01) and not assigned_to_b("ffffffff" + "0" * 24, 0.99)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FLIGHTDELAY_AB_URL": "b:3000", "FLIGHTDELAY_AB_SHARE": "0.5"}, "is not an http(s) URL"),
        ({"FLIGHTDELAY_AB_URL": "http://b"}, "set FLIGHTDELAY_AB_SHARE too"),
        ({"FLIGHTDELAY_AB_URL": "http://b", "FLIGHTDELAY_AB_SHARE": "half"}, "could not convert"),
        ({"FLIGHTDELAY_AB_URL": "http://b", "FLIGHTDELAY_AB_SHARE": "1"}, "must be between 0 and 1"),
        ({"FLIGHTDELAY_AB_URL": "http://b", "FLIGHTDELAY_AB_SHARE": "0.5", "FLIGHTDELAY_AB_TIMEOUT": "-1"}, "(0, 30]"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ABConfigError, match=re.escape(message)):
        ABSettings.from_environment(environ)


def test_settings() -> None:
    assert ABSettings.from_environment({}) is None
    got = ABSettings.from_environment({"FLIGHTDELAY_AB_URL": "http://b:3000/", "FLIGHTDELAY_AB_SHARE": "0.2"})
    assert got == ABSettings("http://b:3000", 0.2, 1.0)
