"""Requests that arrive together are scored in one call, and each gets its own answers back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from flightdelay.serving import Gathered


class Model:
    """A model whose probability is a flight's ``x`` (no ``x``: it fails); it records each call's flights."""

    def __init__(self) -> None:
        self.calls: list[list[float]] = []

    def predict(self, flights: Sequence[dict[str, Any]]) -> tuple[np.ndarray, int]:
        self.calls.append([f.get("x", -1.0) for f in flights])
        return np.array([f["x"] for f in flights], dtype=float), sum(f.get("unseen", 0) for f in flights)


def flights(*xs: float) -> list[dict[str, Any]]:
    return [{"x": x} for x in xs]


async def _together(gathered: Gathered, *requests: list[dict[str, Any]]) -> list[list[float | None]]:
    return list(await asyncio.gather(*(_request(gathered, r) for r in requests)))


async def _request(gathered: Gathered, request: list[dict[str, Any]]) -> list[float | None]:
    await asyncio.sleep(0)  # as a request does before it scores: it reads its body
    return await gathered.score(request)


def test_requests_of_one_turn_are_one_call_and_each_gets_its_own_answers() -> None:
    model = Model()
    answers = asyncio.run(_together(Gathered(model.predict, 99), flights(0.1), flights(0.2, 0.3), flights(0.4)))
    assert answers == [[0.1], [0.2, 0.3], [0.4]]
    assert model.calls == [[0.1, 0.2, 0.3, 0.4]]


def test_a_lone_request_is_scored_in_the_same_turn() -> None:
    async def alone() -> tuple[list[float | None], int]:
        loop = asyncio.get_running_loop()
        turns = 0

        def count() -> None:
            nonlocal turns
            turns += 1
            loop.call_soon(count)

        loop.call_soon(count)
        answer = await Gathered(Model().predict, 99).score(flights(0.5))
        return answer, turns

    answer, turns = asyncio.run(alone())
    assert answer == [0.5]
    assert turns <= 2  # no timer: the flush runs one turn later


def test_a_call_never_holds_more_than_max_rows() -> None:
    model = Model()
    requests = [flights(0.1, 0.2), flights(0.3, 0.4), flights(0.5), flights(0.6, 0.7)]
    answers = asyncio.run(_together(Gathered(model.predict, 3), *requests))
    assert answers == [[0.1, 0.2], [0.3, 0.4], [0.5], [0.6, 0.7]]
    assert model.calls == [[0.1, 0.2], [0.3, 0.4, 0.5], [0.6, 0.7]]


def test_a_flight_that_fails_fails_alone_and_unseen_values_are_counted() -> None:
    model, counted = Model(), []
    gathered = Gathered(model.predict, 99, on_unseen=counted.append)
    answers = asyncio.run(_together(gathered, flights(0.1), [{"nothing": 1}], [{"x": 0.3, "unseen": 2}]))
    assert answers == [[0.1], [None], [0.3]]
    assert counted == [2]


def test_a_caller_that_went_away_leaves_the_others_answered() -> None:
    async def one_cancelled() -> tuple[list[float | None], bool]:
        gathered = Gathered(Model().predict, 99)
        gone = asyncio.ensure_future(_request(gathered, flights(0.1)))
        kept = asyncio.ensure_future(_request(gathered, flights(0.2)))
        await asyncio.sleep(0)  # both are waiting for the flush
        gone.cancel()
        return await kept, gone.cancelled()

    assert asyncio.run(one_cancelled()) == ([0.2], True)


class Stop(BaseException):
    """Not an Exception: score_each lets it through, as it would a bug's."""


def test_what_score_each_lets_through_reaches_every_caller_of_the_call() -> None:
    def stopped(_: Sequence[dict[str, Any]]) -> tuple[np.ndarray, int]:
        raise Stop

    async def both() -> list[Any]:
        asyncio.get_running_loop().set_exception_handler(lambda *_: None)  # the flush's callback raises too
        gathered = Gathered(stopped, 99)
        requests = (_request(gathered, flights(0.1)), _request(gathered, flights(0.2)))
        return list(await asyncio.gather(*requests, return_exceptions=True))

    assert [type(answer) for answer in asyncio.run(both())] == [Stop, Stop]
