"""The relay binds a worker's agent name to the agent its token was issued to; agent tokens work only there.

Raw protocol workers (tests/support/raw_worker.py) against lkps on a real uvicorn (speedups on and off) and
the LiveKit stand-in, which checks worker tokens as livekit-server does.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest
from livekit.protocol import agent

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.settings import Settings
from tests.support.raw_worker import RawWorker, livekit_agent_token, register_agent
from tests.support.service import (
    client_headers,
    fetch_rows,
    new_agent_id,
    served_app,
)


async def start_session(client: httpx.AsyncClient, livekit: LiveKitStandIn, agent_id: str) -> str:
    """A client starts a session with the agent and joins its room; the room's name."""
    response = await client.post(
        "/api/session/start", json={"agent_entra_app_id": agent_id}, headers=client_headers()
    )
    assert response.status_code == 200, response.text
    joined = await asyncio.to_thread(livekit.join, response.json()["participant_token"])
    return joined.room_name


async def test_a_worker_announcing_its_own_agent_registers_and_serves_its_sessions(
    settings: Settings, livekit_standin: LiveKitStandIn
) -> None:
    agent_id = new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        grant = await register_agent(client, agent_id)
        assert grant["livekit_url"] == served.url.replace("http://", "ws://")
        async with aiohttp.ClientSession() as session:
            worker = await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], agent_id)
            worker_id = await worker.registered()
            room = await start_session(client, livekit_standin, agent_id)
            assignment = await worker.serve()
            await served.services.audit.flush()
        assert assignment.job.room.name == room
        # the job's media connection goes to LiveKit, not to the relay the worker dialled
        assert assignment.url == livekit_standin.ws_url
    seen = next(w for w in livekit_standin.workers if w.id == worker_id)
    assert seen.agent_name == agent_id
    assert seen.connection.claims is not None
    assert seen.connection.claims.identity.startswith(f"agent-{agent_id}-")
    rows = await fetch_rows(settings.database_url, "SELECT * FROM job_assignments")
    served_by = [(r["room_name"], r["worker_id"], r["entra_app_id"]) for r in rows]
    assert served_by == [(room, worker_id, agent_id)]
    registration = rows[0]["registration_id"]
    audited = await fetch_rows(
        settings.database_url, "SELECT entra_app_id FROM agent_registrations WHERE id = :id", id=registration
    )
    assert audited == [{"entra_app_id": agent_id}]


@pytest.mark.parametrize("victim_serving", [True, False], ids=["victim-serving", "victim-absent"])
async def test_a_worker_announcing_another_agent_is_refused_and_never_gets_its_sessions(
    settings: Settings, livekit_standin: LiveKitStandIn, victim_serving: bool
) -> None:
    rogue_id, victim_id = new_agent_id(), new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        rogue_grant = await register_agent(client, rogue_id)
        victim_grant = await register_agent(client, victim_id)
        async with aiohttp.ClientSession() as session:
            victim = None
            if victim_serving:
                victim = await RawWorker.connect(
                    session, victim_grant["livekit_url"], victim_grant["livekit_token"], victim_id
                )
                await victim.registered()
            rogue = await RawWorker.connect(
                session, rogue_grant["livekit_url"], rogue_grant["livekit_token"], victim_id
            )
            code, reason = await rogue.closed()
            assert code == 1008
            assert f"not this token's agent ({rogue_id})" in reason
            room = await start_session(client, livekit_standin, victim_id)
            if victim is not None:
                assert (await victim.serve()).job.room.name == room
            await served.services.audit.flush()
    # LiveKit never saw the rogue register: no worker under the victim's name but the victim's own
    registered = [w for w in livekit_standin.workers if w.agent_name == victim_id]
    assert [w.connection.claims.identity.split("-")[1:6] for w in registered if w.connection.claims] == (
        [victim_id.split("-")] if victim_serving else []
    )
    job = next(j for j in livekit_standin.jobs if j.room_name == room)
    assert job.offered_to == ([registered[0].id] if victim_serving else [])
    refused = await fetch_rows(
        settings.database_url,
        "SELECT entra_app_id, announced_agent_name, outcome FROM worker_connections"
        " WHERE outcome = 'refused'",
    )
    assert refused == [{"entra_app_id": rogue_id, "announced_agent_name": victim_id, "outcome": "refused"}]
    served_by = await fetch_rows(settings.database_url, "SELECT entra_app_id FROM job_assignments")
    assert served_by == ([{"entra_app_id": victim_id}] if victim_serving else [])


async def test_an_agent_token_is_refused_by_livekit_itself(
    settings: Settings, livekit_standin: LiveKitStandIn
) -> None:
    agent_id = new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        grant = await register_agent(client, agent_id)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await RawWorker.connect(session, livekit_standin.ws_url, grant["livekit_token"], agent_id)
    assert refused.value.status == 401
    attempt = livekit_standin.connections[-1]
    assert (attempt.accepted, attempt.status) == (False, 401)
    assert attempt.reason.startswith("invalid API key")


async def test_the_relay_refuses_tokens_it_did_not_issue_before_the_upgrade(settings: Settings) -> None:
    agent_id = new_agent_id()
    livekit_signed = livekit_agent_token(agent_id)
    async with served_app(settings) as served, aiohttp.ClientSession() as session:
        url = served.url.replace("http://", "ws://")
        for token in (livekit_signed, "not-a-token"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await RawWorker.connect(session, url, token, agent_id)
            assert refused.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as missing:
            await session.ws_connect(f"{url}/agent")
        assert missing.value.status == 401


async def test_a_worker_may_not_ask_livekit_to_simulate_a_job_in_any_room(
    settings: Settings, livekit_standin: LiveKitStandIn
) -> None:
    agent_id = new_agent_id()
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        grant = await register_agent(client, agent_id)
        async with aiohttp.ClientSession() as session:
            worker = await RawWorker.connect(session, grant["livekit_url"], grant["livekit_token"], agent_id)
            await worker.registered()
            simulate = agent.SimulateJobRequest(type=agent.JT_ROOM)
            simulate.room.name = "someone-elses-room"
            await worker.send(agent.WorkerMessage(simulate_job=simulate))
            ping = agent.WorkerPing(timestamp=1)
            await worker.send(agent.WorkerMessage(ping=ping))
            # the pong proves the ping went through after the dropped request
            assert (await worker.next_message()).HasField("pong")
    assert not [j for j in livekit_standin.jobs if j.room_name == "someone-elses-room"]
