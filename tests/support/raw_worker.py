"""A worker speaking LiveKit's agent protocol byte by byte (protobuf over a websocket), for tests that need
to do what livekit-agents never would: announce another agent's name, hold many idle connections; and the
registration that gives them a token."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import httpx
from livekit import api
from livekit.protocol import agent

from tests.support.service import API_KEY, API_SECRET, gateway_headers, new_agent_id


async def register_agent(client: httpx.AsyncClient, agent_id: str) -> dict[str, str]:
    """Register ``agent_id`` (gateway mode, no client authorization): the answer's ``livekit_url`` (the relay)
    and ``livekit_token`` (its agent token), for a worker to connect with."""
    response = await client.post(
        "/api/agent/register",
        json={"service_config": {"enforce_client_authz": False}},
        headers=gateway_headers(client_id=agent_id),
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def livekit_agent_token(agent_id: str) -> str:
    """An agent token as LiveKit would sign its own (with LiveKit's key, not the platform's agent key): the
    relay must refuse it."""
    return (
        api.AccessToken(API_KEY, API_SECRET)
        .with_identity(f"agent-{agent_id}-{new_agent_id()}")
        .with_name(agent_id)
        .with_grants(api.VideoGrants(agent=True))
        .to_jwt()
    )


@dataclass
class RawWorker:
    ws: aiohttp.ClientWebSocketResponse[bool]
    worker_id: str = ""
    assignments: list[agent.JobAssignment] = field(default_factory=list)

    @classmethod
    async def connect(
        cls, session: aiohttp.ClientSession, url: str, token: str, agent_name: str
    ) -> RawWorker:
        """Open ``<url>/agent`` with ``token`` and send ``register`` announcing ``agent_name``; raises
        ``aiohttp.WSServerHandshakeError`` when the upgrade is refused."""
        ws = await session.ws_connect(f"{url}/agent", headers={"Authorization": f"Bearer {token}"})
        register = agent.WorkerMessage(
            register=agent.RegisterWorkerRequest(type=agent.JT_ROOM, agent_name=agent_name, version="raw")
        )
        await ws.send_bytes(register.SerializeToString())
        return cls(ws)

    async def registered(self, timeout: float = 10.0) -> str:
        """The worker id LiveKit answered; ``AssertionError`` with the close code and reason if closed."""
        message = await self.next_message(timeout)
        assert message.HasField("register"), message
        self.worker_id = message.register.worker_id
        return self.worker_id

    async def next_message(self, timeout: float = 10.0) -> agent.ServerMessage:
        frame = await self.ws.receive(timeout)
        if frame.type != aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"connection closed: code {self.ws.close_code}, {frame.extra!r}")
        message = agent.ServerMessage()
        message.ParseFromString(frame.data)
        return message

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Wait for the server to close the connection (messages until then are skipped or handled); its code
        and reason."""
        while True:
            frame = await self.ws.receive(timeout)
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return self.ws.close_code, str(frame.extra or "")
            if frame.type == aiohttp.WSMsgType.BINARY:
                await self._answer(frame.data)

    async def serve(self, timeout: float = 10.0) -> agent.JobAssignment:
        """Accept the next job offered and return its assignment (answering pings and the like on the way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next_message(max(0.01, deadline - loop.time()))
            if message.HasField("assignment"):
                self.assignments.append(message.assignment)
                update = agent.UpdateJobStatus(job_id=message.assignment.job.id, status=agent.JS_RUNNING)
                await self.ws.send_bytes(agent.WorkerMessage(update_job=update).SerializeToString())
                return message.assignment
            await self._answer(message.SerializeToString())

    async def _answer(self, data: bytes) -> None:
        message = agent.ServerMessage()
        message.ParseFromString(data)
        if message.HasField("availability"):
            job = message.availability.job
            response = agent.AvailabilityResponse(
                job_id=job.id, available=True, participant_identity=f"agent-{job.id}"
            )
            await self.ws.send_bytes(agent.WorkerMessage(availability=response).SerializeToString())

    async def send(self, message: agent.WorkerMessage) -> None:
        await self.ws.send_bytes(message.SerializeToString())
