"""Registration: the request the platform receives, which failures are retried, and how refusals read."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from sdk_fakes import StaticCredential, VirtualTime

from livekit_platform_sdk.identity import PlatformIdentity
from livekit_platform_sdk.registration import (
    PlatformClient,
    PlatformUnavailableError,
    RegistrationError,
    RegistrationRefusedError,
)
from livekit_platform_sdk.settings import Settings

SETTINGS = Settings(platform_url="https://platform.test", scope="api://platform/.default", retry_max_delay=8)
GRANT = {"livekit_token": "lk-token", "livekit_url": "wss://livekit.test", "expires_in": 3600}

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(
    responses: list[httpx.Response | Exception], time: VirtualTime
) -> tuple[PlatformClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = responses.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    identity = PlatformIdentity(SETTINGS, StaticCredential())
    client = PlatformClient(SETTINGS, identity, timing=time.timing(), transport=httpx.MockTransport(handler))
    return client, seen


async def test_register_posts_entra_bearer_and_service_config_and_parses_the_grant() -> None:
    time = VirtualTime()
    client, seen = client_for([httpx.Response(200, json=GRANT)], time)
    grant = await client.register()
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://platform.test/api/agent/register"
    assert request.headers["Authorization"].startswith("Bearer ey")
    assert json.loads(request.content) == {"service_config": {"enforce_client_authz": True}}
    assert grant.livekit_url == "wss://livekit.test"
    assert grant.expires_at == time.now + 3600
    assert "lk-token" not in repr(grant)
    assert client.agent_app_id == "11111111-2222-3333-4444-555555555555"


async def test_5xx_429_and_network_errors_are_retried_with_backoff_honouring_retry_after() -> None:
    time = VirtualTime()
    client, seen = client_for(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json=GRANT),
        ],
        time,
    )
    await client.register(max_attempts=5)
    assert len(seen) == 4
    assert time.sleeps == [1.0, 2.0, 7.0]  # rng=0.5 means no jitter; Retry-After beats the 4 s backoff


@pytest.mark.parametrize(
    ("status", "fix"),
    [
        (400, "check LIVEKIT_PLATFORM_ENFORCE_CLIENT_AUTHZ"),
        (401, "check LIVEKIT_PLATFORM_SCOPE"),
        (403, "assign the agent app role"),
    ],
)
async def test_400_401_403_are_not_retried_and_say_what_to_fix(status: int, fix: str) -> None:
    time = VirtualTime()
    client, seen = client_for([httpx.Response(status, json={"error": "nope"})], time)
    with pytest.raises(RegistrationRefusedError) as error:
        await client.register(max_attempts=5)
    assert len(seen) == 1
    assert time.sleeps == []
    assert f"HTTP {status}" in str(error.value)
    assert fix in str(error.value)
    assert 'Platform said: {"error":"nope"}' in str(error.value)


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    time = VirtualTime()
    client, seen = client_for([httpx.Response(502)] * 3, time)
    with pytest.raises(PlatformUnavailableError) as error:
        await client.register(max_attempts=3)
    assert len(seen) == 3
    assert "after 3 attempt(s)" in str(error.value)
    assert "HTTP 502" in str(error.value)


async def test_retries_stop_at_the_deadline_without_sleeping_past_it() -> None:
    time = VirtualTime()
    client, _ = client_for([httpx.Response(503)] * 10, time)
    deadline = time.now + 5
    with pytest.raises(PlatformUnavailableError):
        await client.register(deadline=deadline)
    assert time.now == deadline
    assert time.sleeps == [1.0, 2.0, 2.0]


async def test_a_malformed_grant_names_the_missing_fields() -> None:
    client, _ = client_for(
        [httpx.Response(200, json={"livekit_url": "ftp://x", "expires_in": 0})], VirtualTime()
    )
    with pytest.raises(RegistrationError) as error:
        await client.register()
    assert "livekit_token is missing" in str(error.value)
    assert "livekit_url is missing or not a ws(s)/http(s) URL" in str(error.value)
    assert "expires_in is missing or not a positive number" in str(error.value)
