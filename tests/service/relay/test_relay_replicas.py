"""The relay on several replicas and across a LiveKit restart: a worker may connect to any replica, a session
started on another reaches it (LiveKit dispatches; the relay only carries), a revocation made anywhere closes
it, and when LiveKit goes away the relay closes the worker so that it reconnects.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import httpx

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.cli.revocation import revoke_agent
from lkps.settings import Settings
from tests.support.raw_worker import RawWorker, register_agent
from tests.support.service import client_headers, fetch_rows, new_agent_id, served_app


async def test_a_worker_on_one_replica_serves_a_session_started_on_another(
    settings: Settings, livekit_standin: LiveKitStandIn
) -> None:
    assert settings.database_url.startswith("postgresql")  # the replicas share one PostgreSQL database
    agent_id = new_agent_id()
    async with (
        served_app(settings) as a,
        served_app(settings) as b,
        httpx.AsyncClient(base_url=b.url) as at_b,
        aiohttp.ClientSession() as session,
    ):
        # registered through B, connected to A: any replica takes any replica's agent token
        grant = await register_agent(at_b, agent_id)
        await b.services.audit.flush()
        relay_a = a.url.replace("http://", "ws://")
        worker = await RawWorker.connect(session, relay_a, grant["livekit_token"], agent_id)
        worker_id = await worker.registered()
        started = await at_b.post(
            "/api/session/start", json={"agent_entra_app_id": agent_id}, headers=client_headers()
        )
        assert started.status_code == 200, started.text
        joined = await asyncio.to_thread(livekit_standin.join, started.json()["participant_token"])
        assignment = await worker.serve()
        assert assignment.job.room.name == joined.room_name
        await a.services.audit.flush()
        # revoked while B holds no connection of it: A's monitor reads the row and closes its worker
        await revoke_agent(settings, agent_id, dt.datetime.now(dt.timezone.utc))
        assert a.services.relay_monitor is not None
        assert await a.services.relay_monitor.check() == 1
        code, _ = await worker.closed()
        assert code == 1008
        await a.services.audit.flush()
    rows = await fetch_rows(settings.database_url, "SELECT worker_id, room_name FROM job_assignments")
    assert rows == [{"worker_id": worker_id, "room_name": joined.room_name}]


async def test_a_livekit_restart_closes_relayed_workers_so_they_reconnect(
    settings: Settings, livekit_standin: LiveKitStandIn
) -> None:
    agent_id = new_agent_id()
    async with (
        served_app(settings) as served,
        httpx.AsyncClient(base_url=served.url) as client,
        aiohttp.ClientSession() as session,
    ):
        grant = await register_agent(client, agent_id)
        worker = await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], agent_id)
        first = await worker.registered()
        await asyncio.to_thread(livekit_standin.restart)
        code, reason = await worker.closed()
        assert code == 1012
        assert reason.startswith("LiveKit closed the worker connection")
        again = await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], agent_id)
        assert await again.registered() != first
        assert served.services.relay_connections is not None
        assert len(served.services.relay_connections) == 1
