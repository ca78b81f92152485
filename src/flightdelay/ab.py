"""A/B test inside the service: a fixed share of requests answered by variant B, each answer tagged with its variant.

The service that receives the traffic is variant A. With ``FLIGHTDELAY_AB_URL`` (B's base URL) and
``FLIGHTDELAY_AB_SHARE`` (the share of requests B answers, between 0 and 1) set, each request is
assigned by its first request id (random hex, so the split is random and can be re-derived from the
log), forwarded to B's ``/predict_batch`` when assigned to B, and answered with B's probabilities and
decisions under A's request ids. Both the answer and the prediction log record carry ``variant``
(``"a"`` or ``"b"``), and the monitor compares the variants (``variants.compare_ab``).

B never fails a request: when it does not answer within ``FLIGHTDELAY_AB_TIMEOUT`` seconds (default
1), answers with an error or with something that is not an answer per flight, A answers instead, the
answer says ``"a"``, and the fallback is counted in ``flightdelay_ab_requests_total{outcome=...}``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from flightdelay.shadow import service_url

logger = logging.getLogger(__name__)

ANSWER_FIELDS = ("delay_probability", "delayed", "threshold", "model", "model_version", "bento_tag")


class ABConfigError(ValueError):
    """An A/B setting that cannot be used; the service refuses to start rather than guess."""


@dataclass(frozen=True)
class ABSettings:
    url: str
    share: float
    timeout: float = 1.0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ABSettings | None:
        """``FLIGHTDELAY_AB_URL`` (unset: no test), ``FLIGHTDELAY_AB_SHARE``, ``FLIGHTDELAY_AB_TIMEOUT`` seconds."""
        env = os.environ if environ is None else environ
        url = service_url(env, "FLIGHTDELAY_AB_URL", "variant B's service", ABConfigError)
        if url is None:
            return None
        if "FLIGHTDELAY_AB_SHARE" not in env:
            raise ABConfigError("FLIGHTDELAY_AB_URL is set: set FLIGHTDELAY_AB_SHARE too (the share B answers, 0-1)")
        try:
            share = float(env["FLIGHTDELAY_AB_SHARE"])
            timeout = float(env.get("FLIGHTDELAY_AB_TIMEOUT", "1"))
        except ValueError as exc:
            raise ABConfigError(f"FLIGHTDELAY_AB_SHARE / _TIMEOUT: {exc}") from exc
        if not 0 < share < 1:
            raise ABConfigError(f"FLIGHTDELAY_AB_SHARE={share} must be between 0 and 1 (exclusive)")
        if not 0 < timeout <= 30:
            raise ABConfigError(f"FLIGHTDELAY_AB_TIMEOUT={timeout} must be in (0, 30] seconds")
        return cls(url, share, timeout)


def assigned_to_b(request_id: str, share: float) -> bool:
    """Whether the request with this (random hex) id goes to B: its first 32 bits, as a fraction, below ``share``."""
    return int(request_id[:8], 16) < share * 2**32


class Challenger:
    """Variant B's service, asked for the answers to the requests assigned to it."""

    def __init__(self, settings: ABSettings, count: Callable[[str], object] = lambda outcome: None) -> None:
        self.settings = settings
        self._count = count
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made inside the worker's event loop, which its pool belongs to
            self._client = httpx.AsyncClient(timeout=self.settings.timeout)
        return self._client

    async def answer(self, flights: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """B's answers, one per flight, reduced to the answer's fields; None when A must answer instead."""
        try:
            response = await self._http().post(f"{self.settings.url}/predict_batch", json={"flights": flights})
            response.raise_for_status()
            answers = response.json()
            if not isinstance(answers, list) or len(answers) != len(flights):
                raise ValueError(f"expected {len(flights)} answers, got {type(answers).__name__}")
            kept = [{k: a[k] for k in ANSWER_FIELDS} for a in answers]
            for a in kept:
                if not 0 <= float(a["delay_probability"]) <= 1 or not isinstance(a["delayed"], bool):
                    raise ValueError(f"not an answer: {a}")
        except httpx.TimeoutException:
            self._count("timeout")
            return None
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._count("failed")
            logger.warning("variant B %s: %s; variant A answered", self.settings.url, str(exc)[:300])
            return None
        self._count("answered")
        return kept

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
