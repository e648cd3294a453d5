"""Renewal timing and loop: hot swap, keep the token while the platform is down, stop when refused."""

from __future__ import annotations

import httpx
import pytest

from livekit_platform_sdk.identity import PlatformIdentity
from livekit_platform_sdk.registration import PlatformClient, PlatformGrant
from livekit_platform_sdk.renewal import Renewer, TokenStore, renewal_time
from livekit_platform_sdk.settings import Settings
from tests.support.fakes import StaticCredential, VirtualTime

SETTINGS = Settings(platform_url="https://platform.test", scope="api://platform/.default", retry_max_delay=4)


@pytest.mark.parametrize(
    ("lifetime", "renew_after"),
    [(3600, 3300), (600, 300), (60, 30), (20, 10), (7200, 6900)],
)
def test_renews_at_the_later_of_half_life_and_five_minutes_before_expiry(
    lifetime: int, renew_after: int
) -> None:
    grant = PlatformGrant("t", "wss://lk", issued_at=1000.0, expires_at=1000.0 + lifetime)
    assert renewal_time(grant) == 1000.0 + renew_after


class Platform:
    """Answers register calls from a script of (status, expires_in) and records when each call came."""

    def __init__(self, time: VirtualTime, script: list[int]) -> None:
        self.time = time
        self.script = script
        self.calls: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(self.time.now)
        status = self.script.pop(0) if self.script else 200
        if status != 200:
            return httpx.Response(status, json={"error": "scripted"})
        token = f"token-{len(self.calls)}"
        return httpx.Response(
            200, json={"livekit_token": token, "livekit_url": "wss://lk", "expires_in": 600}
        )


def renewer_for(platform: Platform, time: VirtualTime, fatal: list[str]) -> tuple[Renewer, TokenStore]:
    identity = PlatformIdentity(SETTINGS, StaticCredential())
    client = PlatformClient(
        SETTINGS, identity, timing=time.timing(), transport=httpx.MockTransport(platform.handler)
    )
    store = TokenStore()
    store.replace(PlatformGrant("token-0", "wss://lk", issued_at=time.now, expires_at=time.now + 600))

    async def on_fatal(message: str) -> None:
        fatal.append(message)

    return Renewer(store, client, on_fatal, timing=time.timing()), store


async def test_refusal_on_renew_is_fatal_after_hot_swapping_earlier_tokens() -> None:
    time = VirtualTime()
    start = time.now
    platform = Platform(time, [200, 200, 403])
    fatal: list[str] = []
    renewer, store = renewer_for(platform, time, fatal)
    await renewer.run()
    assert platform.calls == [start + 300, start + 600, start + 900]
    assert store.current.livekit_token == "token-2"
    assert renewer.renewals == 2
    assert len(fatal) == 1
    assert "refused to renew" in fatal[0]
    assert "HTTP 403" in fatal[0]


async def test_keeps_the_token_while_the_platform_is_down_and_renews_when_it_is_back() -> None:
    time = VirtualTime()
    start = time.now
    platform = Platform(time, [503, 503, 503, 200, 403])
    fatal: list[str] = []
    renewer, _store = renewer_for(platform, time, fatal)
    await renewer.run()
    # three failed attempts with backoff, then success, before the token's expiry at start + 600
    assert platform.calls[:4] == [start + 300, start + 301, start + 303, start + 307]
    assert renewer.renewals == 1
    assert len(fatal) == 1
    assert "refused" in fatal[0]


async def test_token_expiring_without_successor_is_fatal() -> None:
    time = VirtualTime()
    start = time.now
    platform = Platform(time, [503] * 1000)
    fatal: list[str] = []
    renewer, store = renewer_for(platform, time, fatal)
    await renewer.run()
    assert store.current.livekit_token == "token-0"
    assert time.now == start + 600
    assert len(fatal) == 1
    assert "could not renew the LiveKit token" in fatal[0]
    assert "could not be reached" in fatal[0]
