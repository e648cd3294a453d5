"""Exponential backoff with jitter, and the clock/sleep seams that let tests run retries without waiting."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

Clock = Callable[[], float]
"""Wall-clock seconds since the epoch (token expiry is wall-clock time)."""
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before retry ``n`` (1-based): ``initial * multiplier**(n-1)``, capped, then spread by ±jitter."""

    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def delay(self, retry: int, *, rng: Callable[[], float] = random.random) -> float:
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(retry - 1, 0))
        # jitter spreads many agents restarted together (a rollout, a platform outage) over time
        spread = base * self.jitter * (2 * rng() - 1)
        return max(0.0, min(self.max_delay, base + spread))

    def delay_honouring(
        self, retry: int, retry_after: float | None, *, rng: Callable[[], float] = random.random
    ) -> float:
        """The backoff delay, but never shorter than what the server asked for in Retry-After."""
        delay = self.delay(retry, rng=rng)
        return delay if retry_after is None else max(delay, retry_after)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class Timing:
    """The outside world's time: a wall clock, a sleep and a random source, swapped together in tests."""

    clock: Clock = time.time
    sleep: Sleep = asyncio.sleep
    rng: Callable[[], float] = random.random
