"""``GET /api/health``: readiness of what the service depends on, its database and the LiveKit server, and of
its audit writer (stuck: an audit batch unwritten for ``LKPS_AUDIT_STUCK_AFTER``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..domain.times import iso
from ..storage.engine import ping
from .responses import JsonResponse

log = logging.getLogger(__name__)

Reason = Literal["database", "livekit", "audit"]


class HealthChecker:
    """Runs both checks, at most once per ``cache_for`` seconds (probes from many kubelets share a result)."""

    def __init__(
        self,
        engine: AsyncEngine,
        livekit_health_url: str,
        *,
        timeout: float,
        http: httpx.AsyncClient,
        cache_for: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        audit_stuck: Callable[[], bool] = lambda: False,
        on_database_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._url = livekit_health_url
        self._timeout = timeout
        self._http = http
        self._cache_for = cache_for
        self._clock = clock
        self._audit_stuck = audit_stuck
        self._on_database_error = on_database_error  # counted in lkps_database_errors_total
        self._last: tuple[float, Reason | None] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> Reason | None:
        """``None`` when healthy, else which dependency failed first."""
        async with self._lock:
            if self._last is not None and self._clock() - self._last[0] < self._cache_for:
                return self._last[1]
            reason = await self._run()
            self._last = (self._clock(), reason)
            return reason

    async def _run(self) -> Reason | None:
        try:
            await asyncio.wait_for(ping(self._engine), self._timeout)
        except Exception:  # any driver or connection failure means "database down"
            self._on_database_error()
            return "database"
        try:
            response = await self._http.get(self._url, timeout=self._timeout)
        except httpx.HTTPError:
            return "livekit"
        if not response.is_success:
            return "livekit"
        return "audit" if self._audit_stuck() else None


@dataclass
class Health:
    checker: HealthChecker
    json: JsonResponse
    clock: Callable[[], float]

    async def get(self, request: Request) -> Response:
        reason = await self.checker.check()
        timestamp = iso(self.clock())
        if reason is None:
            log.debug("health ok")
            return self.json({"status": "healthy", "timestamp": timestamp, "version": __version__})
        log.debug("health failed", extra={"reason": reason})
        return self.json({"status": "unhealthy", "reason": reason, "timestamp": timestamp}, status_code=503)
