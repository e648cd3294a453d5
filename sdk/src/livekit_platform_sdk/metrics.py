"""The SDK's Prometheus metrics (``livekit_platform_*``), in the registry livekit-agents serves at
``GET :<prometheus_port>/metrics`` (``LIVEKIT_PLATFORM_METRICS_PORT``).

The worker's main process registers and renews, so the metrics live there, in prometheus_client's default
registry. livekit-agents' multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) serves only metrics written to its
files, so the SDK's are not exported in that mode; the worker warns when it is on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "livekit_platform_"
REGISTRATION_DURATION = PREFIX + "registration_duration_seconds"
RENEWALS = PREFIX + "renewals"  # exposed as ..._total
RENEWAL_FAILURES = PREFIX + "renewal_failures"  # exposed as ..._total
TOKEN_EXPIRES_IN = PREFIX + "token_expires_in_seconds"
WORKER_REGISTERED = PREFIX + "worker_registered"

Call = Literal["register", "renew"]
"""``register``: the worker's first registration at start; ``renew``: each renewal after it."""
Outcome = Literal["success", "refused", "unavailable", "credential_error", "invalid_response"]
"""How one registration (all its attempts) ended."""
FailureReason = Literal[
    "unavailable", "rate_limited", "timeout", "network", "credential_error", "refused", "invalid_response"
]
"""Why one attempt failed: HTTP 5xx, HTTP 429, a timeout, a network error, no Entra token, a final 4xx, or
an answer the SDK could not use."""

CALLS: tuple[Call, ...] = ("register", "renew")
OUTCOMES: tuple[Outcome, ...] = ("success", "refused", "unavailable", "credential_error", "invalid_response")
FAILURE_REASONS: tuple[FailureReason, ...] = (
    "unavailable",
    "rate_limited",
    "timeout",
    "network",
    "credential_error",
    "refused",
    "invalid_response",
)
# Entra token plus one platform call is well under a second; retries with backoff reach minutes.
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class PlatformMetrics:
    """The SDK's metrics in one registry (tests pass their own ``CollectorRegistry``).

    Counters and the histogram are updated as things happen; the two gauges are computed when scraped from
    what ``watch`` points them at, so they are exact at every scrape with no timer.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.registration_duration = Histogram(
            REGISTRATION_DURATION,
            "Seconds one registration with the LiveKit Platform Service took, all attempts and backoff "
            "included, by call (register at start, renew) and outcome.",
            ["call", "outcome"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.renewals = Counter(RENEWALS, "Platform tokens renewed (successful renewals).", registry=registry)
        self.renewal_failures = Counter(
            RENEWAL_FAILURES,
            "Failed renewal attempts, by reason; the worker keeps its token and retries until it expires.",
            ["reason"],
            registry=registry,
        )
        self.token_expires_in = Gauge(
            TOKEN_EXPIRES_IN,
            "Seconds until the worker's current platform token expires (negative once expired; NaN before "
            "the first registration).",
            registry=registry,
        )
        self.worker_registered = Gauge(
            WORKER_REGISTERED,
            "1 while the worker is registered with LiveKit on its open websocket, else 0.",
            registry=registry,
        )
        # every labelled series exists from the start, so rate() and alerts see a 0 before the first event
        for call in CALLS:
            for outcome in OUTCOMES:
                self.registration_duration.labels(call=call, outcome=outcome)
        for reason in FAILURE_REASONS:
            self.renewal_failures.labels(reason=reason)
        self._expiry: Callable[[], float | None] = lambda: None
        self._registered: Callable[[], bool] = lambda: False
        self._clock: Callable[[], float] = time.time
        self.token_expires_in.set_function(self._seconds_left)
        self.worker_registered.set_function(lambda: 1.0 if self._registered() else 0.0)

    def watch(
        self,
        *,
        expiry: Callable[[], float | None],
        registered: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Compute the gauges from these at each scrape (the running worker's token store and websocket)."""
        self._expiry = expiry
        self._registered = registered
        self._clock = clock

    def registration(self, call: Call, outcome: Outcome, seconds: float) -> None:
        self.registration_duration.labels(call=call, outcome=outcome).observe(seconds)
        if call == "renew" and outcome == "success":
            self.renewals.inc()

    def renewal_failure(self, reason: FailureReason) -> None:
        self.renewal_failures.labels(reason=reason).inc()

    def _seconds_left(self) -> float:
        expires_at = self._expiry()
        return math.nan if expires_at is None else expires_at - self._clock()


_default: PlatformMetrics | None = None


def default_metrics() -> PlatformMetrics:
    """The process's metrics in prometheus_client's default registry (the one livekit-agents serves),
    created on first use: a metric name can be registered once per registry."""
    global _default
    if _default is None:
        _default = PlatformMetrics()
    return _default
