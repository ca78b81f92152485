"""Shadow deployment inside the service: each request copied to a candidate, its answers logged, never returned.

The production service answers first; only then is the copy sent, as a task on the worker's event loop,
to the shadow's ``/predict_batch`` (the flights as validated, so the shadow sees exactly what production
scored). The shadow's answers go into production's own prediction log under production's request ids,
marked ``"variant": "shadow"``: the monitor compares the two on the very same requests by joining on
the id (``monitor.compare_shadow``).

Nothing the shadow does reaches a caller. A copy waits at most ``timeout`` seconds; at most
``max_in_flight`` copies are outstanding per worker, and a request beyond that is not copied. Every
copy's outcome is counted (``answered``, ``failed``, ``timeout``, ``skipped``) in the metric the service
exposes as ``flightdelay_shadow_requests_total``.

Why in the service rather than a mesh's mirroring route (Istio ``mirror``, Gateway API
``RequestMirror``): a mesh mirrors the bytes and drops the answer, so pairing the shadow's answer with
production's needs a second log and a join on something both saw; here the pair is logged together.
It also runs on loopback, so it is tested here with two real servers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)

OUTCOMES = ("answered", "failed", "timeout", "skipped")


class ShadowConfigError(ValueError):
    """A shadow setting that cannot be used; the service refuses to start rather than guess."""


def service_url(env: Mapping[str, str], name: str, what: str, error: type[ValueError]) -> str | None:
    """The base URL of another service from the variable ``name``: None when unset, ``error`` when not http(s)."""
    url = env.get(name, "").strip()
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise error(f"{name}={url!r} is not an http(s) URL of {what}")
    return url.rstrip("/")


@dataclass(frozen=True)
class ShadowSettings:
    url: str
    timeout: float = 2.0
    max_in_flight: int = 64

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ShadowSettings | None:
        """``FLIGHTDELAY_SHADOW_URL`` (unset: no shadow), ``_TIMEOUT`` seconds, ``_MAX_IN_FLIGHT`` copies."""
        env = os.environ if environ is None else environ
        url = service_url(env, "FLIGHTDELAY_SHADOW_URL", "the shadow service", ShadowConfigError)
        if url is None:
            return None
        try:
            timeout = float(env.get("FLIGHTDELAY_SHADOW_TIMEOUT", "2"))
            limit = int(env.get("FLIGHTDELAY_SHADOW_MAX_IN_FLIGHT", "64"))
        except ValueError as exc:
            raise ShadowConfigError(f"FLIGHTDELAY_SHADOW_TIMEOUT / _MAX_IN_FLIGHT: {exc}") from exc
        if not 0 < timeout <= 60:
            raise ShadowConfigError(f"FLIGHTDELAY_SHADOW_TIMEOUT={timeout} must be in (0, 60] seconds")
        if limit < 1:
            raise ShadowConfigError(f"FLIGHTDELAY_SHADOW_MAX_IN_FLIGHT={limit} must be at least 1")
        return cls(url, timeout, limit)


class Mirror:
    """Copies validated flights to the shadow after production answered; logs what it says, returns nothing."""

    def __init__(
        self,
        settings: ShadowSettings,
        write: Callable[[dict[str, Any]], None],
        count: Callable[[str], object] = lambda outcome: None,
    ) -> None:
        self.settings = settings
        self._write = write
        self._count = count
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # Made on first use, inside the worker's event loop (the client's pool belongs to that loop).
        if self._client is None:
            limits = httpx.Limits(max_connections=self.settings.max_in_flight, max_keepalive_connections=16)
            self._client = httpx.AsyncClient(timeout=self.settings.timeout, limits=limits)
        return self._client

    def send(self, flights: list[dict[str, Any]], request_ids: list[str], now: float) -> None:
        """Schedule one copy of a request; returns at once. Called from the event loop, after the answer."""
        if len(self._tasks) >= self.settings.max_in_flight:
            self._count("skipped")
            return
        task = asyncio.get_running_loop().create_task(self._copy(flights, request_ids, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _copy(self, flights: list[dict[str, Any]], request_ids: list[str], now: float) -> None:
        try:
            response = await self._http().post(f"{self.settings.url}/predict_batch", json={"flights": flights})
            response.raise_for_status()
            answers = response.json()
            if not isinstance(answers, list) or len(answers) != len(flights):
                raise ValueError(f"expected {len(flights)} answers, got {type(answers).__name__}")
        except httpx.TimeoutException:
            self._count("timeout")
            return
        except (httpx.HTTPError, ValueError) as exc:
            self._count("failed")
            logger.warning("shadow %s: %s", self.settings.url, str(exc)[:300])
            return
        self._count("answered")
        for flight, request_id, answer in zip(flights, request_ids, answers, strict=True):
            output = dict(answer) | {"request_id": request_id, "shadow_request_id": answer.get("request_id")}
            self._write({"time": now, "request_id": request_id, "variant": "shadow", "input": flight, "output": output})

    async def close(self) -> None:
        """Let the outstanding copies finish (each within its timeout), then close the connections."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.settings.timeout + 1)
        if self._client is not None:
            await self._client.aclose()
