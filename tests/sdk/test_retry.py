"""Backoff policy: exponential, capped, jittered within bounds, never shorter than Retry-After."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from livekit_platform_sdk.retry import RetryPolicy, parse_retry_after


def test_delay_doubles_per_retry_until_the_cap() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=10, jitter=0)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999])
def test_jitter_spreads_delay_within_its_fraction(draw: float) -> None:
    policy = RetryPolicy(initial_delay=4, max_delay=100, jitter=0.25)
    delay = policy.delay(1, rng=lambda: draw)
    assert 3.0 <= delay <= 5.0
    assert delay == pytest.approx(4 + 4 * 0.25 * (2 * draw - 1))


def test_jitter_never_exceeds_the_cap() -> None:
    policy = RetryPolicy(initial_delay=10, max_delay=10, jitter=0.5)
    assert policy.delay(3, rng=lambda: 0.999) == 10


def test_retry_after_longer_than_backoff_wins() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=30, jitter=0)
    assert policy.delay_honouring(1, 7.0) == 7.0
    assert policy.delay_honouring(4, 2.0) == 8.0


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("5", now=0) == 5.0
    assert parse_retry_after(formatdate(1_000_030, usegmt=True), now=1_000_000) == pytest.approx(30)
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None
