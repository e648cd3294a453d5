"""Registration: the request the platform receives, which failures are retried, and how refusals read."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import CollectorRegistry

from livekit_platform_sdk.identity import PlatformIdentity
from livekit_platform_sdk.metrics import PlatformMetrics
from livekit_platform_sdk.registration import (
    PlatformClient,
    PlatformUnavailableError,
    RegistrationError,
    RegistrationRefusedError,
)
from livekit_platform_sdk.settings import Settings
from tests.support.fakes import StaticCredential, VirtualTime

SETTINGS = Settings(platform_url="https://platform.test", scope="api://platform/.default", retry_max_delay=8)
GRANT = {"livekit_token": "lk-token", "livekit_url": "wss://livekit.test", "expires_in": 3600}

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(
    responses: list[httpx.Response | Exception], time: VirtualTime, metrics: PlatformMetrics | None = None
) -> tuple[PlatformClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = responses.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    identity = PlatformIdentity(SETTINGS, StaticCredential())
    client = PlatformClient(
        SETTINGS,
        identity,
        timing=time.timing(),
        transport=httpx.MockTransport(handler),
        metrics=metrics or PlatformMetrics(CollectorRegistry()),
    )
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
    body = {"error": "nope", "detail": "the field is wrong", "field": "service_config", "extra": "hidden"}
    client, seen = client_for([httpx.Response(status, json=body)], time)
    with pytest.raises(RegistrationRefusedError) as error:
        await client.register(max_attempts=5)
    assert len(seen) == 1
    assert time.sleeps == []
    assert f"HTTP {status}" in str(error.value)
    assert fix in str(error.value)
    assert str(error.value).endswith("Platform said: nope: the field is wrong (field: service_config)")


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


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (
            httpx.Response(403, text="<html>denied</html>", headers={"Content-Type": "text/html"}),
            "bytes (text/html), not the",
        ),
        (httpx.Response(403, json=["not", "an", "object"]), "a body of 21 bytes (application/json)"),
        (httpx.Response(403, json={"message": "proxy says no"}), "not the platform's error shape"),
        (httpx.Response(403), "an empty body"),
        (httpx.Response(403, content=b"\x00\xff", headers={"Content-Type": "x\r\nInjected: 1"}), "(untyped)"),
    ],
)
async def test_an_answer_not_in_the_platforms_error_shape_is_described_never_quoted(
    response: httpx.Response, said: str
) -> None:
    client, _ = client_for([response], VirtualTime())
    with pytest.raises(RegistrationRefusedError) as error:
        await client.register()
    assert said in str(error.value)
    for quoted in ("denied", "proxy says no", "not", "Injected"):
        assert f"Platform said: {quoted}" not in str(error.value)
    assert "\n" not in str(error.value)


async def test_control_characters_and_long_platform_fields_are_cut() -> None:
    body = {"error": "bad\r\nforged: log line\x1b[31m", "detail": "x" * 5000}
    client, _ = client_for([httpx.Response(401, json=body)], VirtualTime())
    with pytest.raises(RegistrationRefusedError) as error:
        await client.register()
    message = str(error.value)
    for control in ("\r", "\n", "\x1b"):
        assert control not in message
    assert "bad  forged: log line [31m" in message
    assert len(message) < 600


async def test_the_platforms_agent_name_is_kept_with_the_grant() -> None:
    client, _ = client_for(
        [httpx.Response(200, json={**GRANT, "agent_name": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"})],
        VirtualTime(),
    )
    assert (await client.register()).agent_name == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    client, _ = client_for([httpx.Response(200, json=GRANT)], VirtualTime())
    assert (await client.register()).agent_name is None


@pytest.mark.parametrize("agent_name", ["", 42, "two\nlines", " padded", "x" * 129, ["a"]])
async def test_an_unusable_agent_name_in_the_grant_is_refused(agent_name: object) -> None:
    client, _ = client_for([httpx.Response(200, json={**GRANT, "agent_name": agent_name})], VirtualTime())
    with pytest.raises(RegistrationError, match="agent_name is not a non-empty string of at most 128"):
        await client.register()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exported"
    return value


async def test_registrations_are_timed_by_call_and_outcome_and_renewal_failures_counted_by_reason() -> None:
    registry = CollectorRegistry()
    metrics = PlatformMetrics(registry)
    time = VirtualTime()
    client, _ = client_for(
        [
            httpx.Response(200, json=GRANT),
            httpx.Response(503),
            httpx.Response(429),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=GRANT),
            httpx.Response(403, json={"error": "forbidden"}),
        ],
        time,
        metrics,
    )
    await client.register()
    await client.register(renewal=True)
    with pytest.raises(RegistrationRefusedError):
        await client.register(renewal=True)

    duration = "livekit_platform_registration_duration_seconds_count"
    assert sample(registry, duration, call="register", outcome="success") == 1
    assert sample(registry, duration, call="renew", outcome="success") == 1
    assert sample(registry, duration, call="renew", outcome="refused") == 1
    assert sample(registry, duration, call="register", outcome="unavailable") == 0
    assert sample(registry, "livekit_platform_renewals_total") == 1
    failures = "livekit_platform_renewal_failures_total"
    counted = {
        reason: sample(registry, failures, reason=reason)
        for reason in (
            "unavailable",
            "rate_limited",
            "network",
            "timeout",
            "refused",
            "credential_error",
            "invalid_response",
        )
    }
    assert counted == {
        "unavailable": 1,
        "rate_limited": 1,
        "network": 1,
        "timeout": 1,
        "refused": 1,
        "credential_error": 0,
        "invalid_response": 0,
    }


async def test_a_registration_that_runs_out_of_attempts_is_timed_as_unavailable() -> None:
    registry = CollectorRegistry()
    client, _ = client_for([httpx.Response(502)] * 2, VirtualTime(), PlatformMetrics(registry))
    with pytest.raises(PlatformUnavailableError):
        await client.register(max_attempts=2)
    count = "livekit_platform_registration_duration_seconds_count"
    assert sample(registry, count, call="register", outcome="unavailable") == 1
    assert sample(registry, "livekit_platform_renewal_failures_total", reason="unavailable") == 0
