"""Refused requests: each API error answered is counted (``lkps_refusals_total`` by route and reason) and
logged, rate-limited per reason so that a flood of forged tokens cannot flood the log.

A line names the route, status, error code, reason and the field at fault; never the token, signature or
any header value (the error's detail is the service's own text). Each reason has a token bucket: a burst of
lines, then one a second; refusals past it are counted and reported by one "similar refusals suppressed"
line, written before that reason's next line or at shutdown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..errors import ApiError
from .metrics import Metrics

log = logging.getLogger(__name__)

BURST = 10
PER_SECOND = 1.0


class _Bucket:
    __slots__ = ("suppressed", "tokens", "updated")

    def __init__(self, now: float) -> None:
        self.tokens = float(BURST)
        self.updated = now
        self.suppressed = 0


class Refusals:
    """Called with the request's path and the error for every API error the service answers, on both
    dispatch paths (Starlette's exception handler and the routes speedup)."""

    def __init__(self, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        # One per reason: reasons are the service's constants, so the map stays small.
        self._buckets: dict[str, _Bucket] = {}

    def __call__(self, path: str, exc: ApiError, client: str | None = None) -> None:
        route = self._metrics.route_of(path)
        self._metrics.refused(path, exc.reason)
        now = self._clock()
        bucket = self._buckets.get(exc.reason)
        if bucket is None:
            bucket = self._buckets[exc.reason] = _Bucket(now)
        bucket.tokens = min(float(BURST), bucket.tokens + (now - bucket.updated) * PER_SECOND)
        bucket.updated = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return
        bucket.tokens -= 1.0
        self._report_suppressed(exc.reason, bucket)
        log.log(
            logging.WARNING if exc.status in (401, 403) else logging.INFO,
            "request refused",
            extra={
                "route": route,
                "status": exc.status,
                "error": exc.error,
                "reason": exc.reason,
                "field": exc.field,
                "detail": exc.detail,
                "client_address": client,
            },
        )

    def flush(self) -> None:
        """Report what is still suppressed (at shutdown)."""
        for reason, bucket in self._buckets.items():
            self._report_suppressed(reason, bucket)

    def _report_suppressed(self, reason: str, bucket: _Bucket) -> None:
        if bucket.suppressed:
            count, bucket.suppressed = bucket.suppressed, 0
            log.warning(f"{count} similar refusals suppressed", extra={"reason": reason, "suppressed": count})
