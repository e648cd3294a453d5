"""Live revocation and expiry at the relay: revoked or expired agents' workers are closed while connected and
refused when they come back; a renewal extends a live connection without a reconnect.

Raw protocol workers against lkps on a real uvicorn and the LiveKit stand-in; the app's clock is a seam, so
a token's expiry is reached without waiting, and the monitor's round is run when the test says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from livekit.protocol import agent

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.cli.revocation import UnknownAgentError, revoke_agent
from lkps.settings import Settings
from lkps.speedups import spelled
from tests.support.raw_worker import RawWorker, register_agent
from tests.support.service import (
    client_headers,
    fetch_rows,
    new_agent_id,
    served_app,
    service_env,
)


class Clock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def test_a_revoked_agent_is_closed_while_connected_and_refused_when_it_comes_back(
    settings: Settings, session: aiohttp.ClientSession
) -> None:
    agent_id, bystander_id = new_agent_id(), new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        grant, other = await register_agent(client, agent_id), await register_agent(client, bystander_id)
        worker = await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], agent_id)
        bystander = await RawWorker.connect(
            session, other["livekit_url"], other["livekit_token"], bystander_id
        )
        await worker.registered()
        await bystander.registered()
        await served.services.audit.flush()
        monitor = served.services.relay_monitor
        assert monitor is not None
        assert await monitor.check() == 0
        await revoke_agent(settings, agent_id, dt.datetime.now(dt.timezone.utc))
        assert await monitor.check() == 1
        code, reason = await worker.closed()
        assert (code, reason.split(":")[0]) == (1008, "agent revoked")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], agent_id)
        assert refused.value.status == 401
        # the other agent is untouched; the revoked one gets back in by registering again (Entra decides)
        await bystander.send(agent.WorkerMessage(ping=agent.WorkerPing(timestamp=1)))
        assert (await bystander.next_message()).HasField("pong")
        fresh = await register_agent(client, agent_id)
        await served.services.audit.flush()
        again = await RawWorker.connect(session, fresh["livekit_url"], fresh["livekit_token"], agent_id)
        await again.registered()
        assert await monitor.check() == 0
        await served.services.audit.flush()
    closes = await fetch_rows(
        settings.database_url,
        "SELECT close_code, close_reason FROM worker_connections WHERE entra_app_id = :agent"
        " AND closed_at IS NOT NULL ORDER BY opened_at",
        agent=agent_id,
    )
    assert closes[0]["close_code"] == 1008
    assert closes[0]["close_reason"].startswith("agent revoked")


async def test_an_expired_token_without_renewal_is_closed_and_a_renewal_keeps_the_job_and_the_connection(
    settings: Settings, livekit_standin: LiveKitStandIn, session: aiohttp.ClientSession
) -> None:
    clock = Clock()
    renewing, lapsing = new_agent_id(), new_agent_id()
    async with (
        served_app(settings, clock=clock) as served,
        httpx.AsyncClient(base_url=served.url) as client,
    ):
        monitor = served.services.relay_monitor
        assert monitor is not None
        grants = {agent_id: await register_agent(client, agent_id) for agent_id in (renewing, lapsing)}
        workers = {
            agent_id: await RawWorker.connect(session, g["livekit_url"], g["livekit_token"], agent_id)
            for agent_id, g in grants.items()
        }
        worker_ids = {agent_id: await w.registered() for agent_id, w in workers.items()}
        started = await client.post(
            "/api/session/start", json={"agent_entra_app_id": renewing}, headers=client_headers()
        )
        joined = await asyncio.to_thread(livekit_standin.join, started.json()["participant_token"])
        assignment = await workers[renewing].serve()
        await livekit_standin.wait_for_job_status_async(assignment.job.id, "JS_RUNNING")
        # the SDK renews before expiry: a new registration, no reconnect
        clock.offset = settings.agent_token_ttl - 60
        await register_agent(client, renewing)
        await served.services.audit.flush()
        clock.offset = settings.agent_token_ttl + 1
        assert await monitor.check() == 1
        code, reason = await workers[lapsing].closed()
        assert (code, reason.split(" ")[:3]) == (1008, ["agent", "token", "expired"])
        await workers[renewing].send(agent.WorkerMessage(ping=agent.WorkerPing(timestamp=1)))
        assert (await workers[renewing].next_message()).HasField("pong")
        lapsed = grants[lapsing]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await RawWorker.connect(session, lapsed["livekit_url"], lapsed["livekit_token"], lapsing)
        assert refused.value.status == 401
    job = livekit_standin.job(assignment.job.id)
    assert job.room_name == joined.room_name
    assert "JS_RUNNING" in job.statuses
    # one registration with LiveKit for the renewing agent's worker, the one that ran the job throughout
    assert [w.id for w in livekit_standin.workers if w.agent_name == renewing] == [worker_ids[renewing]]
    assert job.offered_to == [worker_ids[renewing]]


async def test_lkps_agents_revoke_revokes_from_the_command_line(
    settings: Settings, livekit_standin: LiveKitStandIn, session: aiohttp.ClientSession
) -> None:
    agent_id = new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        await register_agent(client, agent_id)
        await served.services.audit.flush()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LKPS_", "LIVEKIT_"))}
    env.update(
        service_env(livekit_standin.ws_url, settings.database_url, LKPS_SPEEDUPS=spelled(settings.speedups))
    )
    command = [sys.executable, "-m", "lkps", "agents", "revoke"]
    done = await asyncio.to_thread(run, [*command, agent_id.upper()], env)
    assert done.returncode == 0, done.stderr
    rows = await fetch_rows(
        settings.database_url, "SELECT revoked_at FROM agents WHERE entra_app_id = :agent", agent=agent_id
    )
    assert rows[0]["revoked_at"] is not None
    unknown = await asyncio.to_thread(run, [*command, new_agent_id()], env)
    assert unknown.returncode == 2
    assert "has never registered" in unknown.stderr
    malformed = await asyncio.to_thread(run, [*command, "not-a-guid"], env)
    assert (malformed.returncode, "is not an Entra app (client) ID" in malformed.stderr) == (2, True)
    with pytest.raises(UnknownAgentError):
        await revoke_agent(settings, new_agent_id(), dt.datetime.now(dt.timezone.utc))


def test_lkps_serve_requires_the_agent_token_secret(
    livekit_standin: LiveKitStandIn, settings: Settings
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LKPS_", "LIVEKIT_"))}
    env.update(service_env(livekit_standin.ws_url, settings.database_url))
    del env["LKPS_AGENT_TOKEN_SECRET"]
    done = subprocess.run(
        [sys.executable, "-m", "lkps", "serve", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "LKPS_AGENT_TOKEN_SECRET is not set" in done.stderr
