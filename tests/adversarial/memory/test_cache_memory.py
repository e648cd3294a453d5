"""Every cache or map a caller can grow stays bounded under a hostile burst, and the process's memory returns
to where it was (issue 24, items 4 and 5): one test per cache, each keyed by what an attacker sends.

Memory is what tracemalloc counts as still allocated after the burst (the app runs in this process), after a
warm-up of ordinary requests; the thresholds are far below what each cache pinned before it was bounded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from lkps.app import create_app
from lkps.settings import Settings
from tests.support.edge import (
    OPEN_AGENT,
    RefusingAuthorizer,
    app_services,
    gateway_headers,
    retained_after,
    until,
)

MiB = 1024 * 1024
BURST = 600


@pytest.fixture(autouse=True)
def quiet_service(caplog: pytest.LogCaptureFixture) -> None:
    """The service's INFO lines off: pytest keeps every captured record in memory until the test ends."""
    caplog.set_level(logging.WARNING, logger="lkps")


@dataclass
class InProcess:
    client: httpx.AsyncClient
    services: Any


@contextlib.asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[InProcess]:
    app = create_app(settings, authorizer=RefusingAuthorizer())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lkps") as client:
            yield InProcess(client, app_services(app))


def big(seed: int, size: int = 12 * 1024) -> str:
    """A distinct header-safe value of ``size`` characters."""
    return f"{seed:08d}" + "x" * (size - 8)


async def test_gateway_profiles_do_not_pin_memory(gateway_settings: Settings) -> None:
    async with in_process(gateway_settings) as app:

        async def send(profile: str) -> None:
            # no body: 400 after the identity (and its profile) was read
            response = await app.client.post(
                "/api/session/start", headers=gateway_headers(**{"user-profile": profile})
            )
            assert response.status_code == 400, response.text

        for i in range(20):
            await send(json.dumps({"displayName": f"User {i}", "cwid": f"U{i}"}))

        async def burst() -> None:
            for i in range(BURST):
                profile = json.dumps({"displayName": big(i), "cwid": "C"})
                await send(base64.b64encode(profile.encode()).decode())

        retained = await retained_after(burst)

    assert retained < 1 * MiB


async def test_caller_ids_in_room_names_do_not_pin_memory(gateway_settings: Settings) -> None:
    agent = str(uuid.uuid4())
    async with in_process(gateway_settings) as app:
        registered = await app.client.post(
            "/api/agent/register", json=OPEN_AGENT, headers=gateway_headers(agent)
        )
        assert registered.status_code == 200

        async def start(user_id: str) -> None:
            response = await app.client.post(
                "/api/session/start",
                json={"agent_entra_app_id": agent},
                headers=gateway_headers(**{"user-id": user_id}),
            )
            assert response.status_code == 200, response.text

        for i in range(20):
            await start(f"user-{i}")
        await until(lambda: app.services.audit.written >= 21, what="the warm-up audited")

        async def burst() -> None:
            for i in range(BURST):
                await start(big(i))
            await until(lambda: app.services.audit.written >= 21 + BURST, what="the burst audited")

        retained = await retained_after(burst)

    # the burst's IDs total 7 MiB; what remains is the audit writer's last batch and statement caches
    assert retained < 4 * MiB


async def test_padded_agent_ids_do_not_pin_memory(gateway_settings: Settings) -> None:
    """``uuid.UUID`` takes any number of hyphens: a 60 KB agent ID is a valid one."""
    hex_id = uuid.uuid4().hex
    async with in_process(gateway_settings) as app:

        async def start(agent_id: str) -> None:
            response = await app.client.post(
                "/api/session/start", json={"agent_entra_app_id": agent_id}, headers=gateway_headers()
            )
            assert response.status_code in (400, 404), response.text

        for _ in range(20):
            await start(str(uuid.uuid4()))

        async def burst() -> None:
            for i in range(BURST // 4):
                await start("-" * (60_000 + i) + hex_id)

        retained = await retained_after(burst)

    assert retained < 1 * MiB


async def test_webhook_authorization_segments_do_not_pin_memory(gateway_settings: Settings) -> None:
    async with in_process(gateway_settings) as app:

        async def deliver(authorization: str) -> None:
            response = await app.client.post(
                "/livekit/webhook",
                content=b'{"event": "room_started"}',
                headers={"Authorization": authorization, "Content-Type": "application/webhook+json"},
            )
            assert response.status_code == 401, response.text

        for i in range(20):
            await deliver(f"eyJhbGciOiJIUzI1NiJ9.e30.{i}")

        async def burst() -> None:
            for i in range(BURST // 4):
                await deliver(f"{big(i)}.e30.c2ln")

        retained = await retained_after(burst)

    assert retained < 256 * 1024


async def test_unknown_agent_ids_leave_the_registry_bounded(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "LKPS_REGISTRY_CACHE_SIZE": "100"})
    async with in_process(settings) as app:

        async def start() -> None:
            response = await app.client.post(
                "/api/session/start",
                json={"agent_entra_app_id": str(uuid.uuid4())},
                headers=gateway_headers(),
            )
            assert response.status_code == 404, response.text

        for _ in range(100):
            await start()

        async def burst() -> None:
            for _ in range(BURST // 2):
                await start()

        retained = await retained_after(burst)
        cached = len(app.services.registry)

    assert cached == 100
    # what remains is bounded elsewhere: the parsed-GUID cache of speedup "caches" (4,096 short strings)
    assert retained < 2 * MiB


async def test_host_headers_do_not_grow_the_relay_url_cache(gateway_settings: Settings) -> None:
    """The answer's relay URL is remembered per way the service was reached (the Host header is the
    caller's): at most 64 of them, none from a Host longer than a DNS name."""
    agent = str(uuid.uuid4())
    app = create_app(gateway_settings, authorizer=RefusingAuthorizer())
    register = next(r for r in app.routes if getattr(r, "path", "") == "/api/agent/register")
    remembered: dict[Any, str] = register.endpoint.__self__._relay_urls  # type: ignore[attr-defined]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lkps") as client:

            async def answer(host: str) -> str:
                response = await client.post(
                    "/api/agent/register", json=OPEN_AGENT, headers={**gateway_headers(agent), "host": host}
                )
                assert response.status_code == 200, response.text
                return str(response.json()["livekit_url"])

            for i in range(BURST):
                assert await answer(f"lkps-{i}.example.com") == f"ws://lkps-{i}.example.com"
            for i in range(20):
                assert (await answer(f"{big(i, 4 * 1024)}.example.com")).startswith("ws://")
    assert len(remembered) == 64
    assert all(len(host or "") <= 255 for _, host, _ in remembered)
