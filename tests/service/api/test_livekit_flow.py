"""The service's tokens and webhook endpoint against the LiveKit stand-in, lkps on a real uvicorn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import pytest

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.settings import Settings
from lkps.speedups import spelled
from tests.support.service import (
    API_KEY,
    API_SECRET,
    assert_fast_webhooks,
    client_headers,
    fetch_rows,
    free_port,
    gateway_headers,
    new_agent_id,
    served_app,
    service_env,
)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_the_worker_token_opens_the_relay_websocket_and_a_forged_one_does_not(
    settings: Settings, livekit_standin: LiveKitStandIn
) -> None:
    agent_id = new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        response = await client.post(
            "/api/agent/register", json={}, headers=gateway_headers(client_id=agent_id)
        )
        token, relay = response.json()["livekit_token"], response.json()["livekit_url"]
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{relay}/agent", headers={"Authorization": f"Bearer {token}"})
            await ws.close()
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{relay}/agent", headers={"Authorization": f"Bearer {forged}"})
            assert refused.value.status == 401


async def test_a_client_joining_with_the_session_token_drives_the_lifecycle_through_webhooks(
    settings: Settings,
) -> None:
    port = free_port()
    with LiveKitStandIn(
        api_key=API_KEY, api_secret=API_SECRET, webhook_url=f"http://127.0.0.1:{port}/livekit/webhook"
    ) as livekit:
        env = service_env(livekit.ws_url, settings.database_url, LKPS_SPEEDUPS=spelled(settings.speedups))
        agent_id = new_agent_id()
        async with served_app(Settings.from_env(env), port=port) as served:
            async with httpx.AsyncClient(base_url=served.url) as client:
                await client.post(
                    "/api/agent/register",
                    json={"service_config": {"enforce_client_authz": False}},
                    headers=gateway_headers(client_id=agent_id),
                )
                started = await client.post(
                    "/api/session/start", json={"agent_entra_app_id": agent_id}, headers=client_headers()
                )
            room = started.json()["room_name"]
            joined = await asyncio.to_thread(livekit.join, started.json()["participant_token"])
            assert joined.room_name == room
            assert livekit.room(room).max_participants == 2

            def status_is(expected: str) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    rows = await fetch_rows(
                        settings.database_url, "SELECT status FROM sessions WHERE room_name = :r", r=room
                    )
                    return bool(rows) and rows[0]["status"] == expected

                return check

            await eventually(status_is("participant_joined"))
            await asyncio.to_thread(livekit.leave, room, joined.identity)
            await eventually(status_is("completed"))
            assert_fast_webhooks(served.services, 3)  # the stand-in signs as LiveKit does
    rows = await fetch_rows(settings.database_url, "SELECT * FROM sessions WHERE room_name = :r", r=room)
    assert rows[0]["agent_entra_app_id"] == agent_id
    assert rows[0]["room_sid"] == joined.room_sid
    assert rows[0]["participant_joined_at"] is not None
    assert rows[0]["disconnect_reason"] is not None
