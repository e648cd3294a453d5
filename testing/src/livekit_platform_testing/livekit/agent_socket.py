"""The agent websocket ``/agent`` on the wire: the worker token check at upgrade, ``register`` first, then one
handler per ``WorkerMessage`` (protobuf), as livekit-agents workers speak it."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web
from livekit.protocol import agent, models

from .exceptions import TokenRejectedError
from .models import LiveKitBackend
from .records import ConnectionAttempt, utcnow
from .tokens import fingerprint

logger = logging.getLogger(__name__)

_REGISTER_TIMEOUT = 10.0


class AgentSocket:
    """``GET /agent``: takes ``Authorization: Bearer <jwt>`` with the ``video.agent`` grant, else HTTP 401."""

    def __init__(self, backend: LiveKitBackend) -> None:
        self._backend = backend

    def _check_worker_token(self, request: web.Request) -> ConnectionAttempt:
        attempt = ConnectionAttempt(
            at=utcnow(), accepted=False, reason="", status=401, fingerprint=None, claims=None
        )
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            attempt.reason = (
                "missing 'Authorization: Bearer <token>' header: send the worker token as a bearer"
            )
            return attempt
        token = token.strip()
        attempt.fingerprint = fingerprint(token)
        try:
            attempt.claims, _ = self._backend.authority.verify(token)
        except TokenRejectedError as exc:
            attempt.reason, attempt.claims = exc.reason, exc.claims
            return attempt
        if not attempt.claims.agent_grant:
            attempt.reason = (
                "token has no video.agent grant: mint the worker token with VideoGrants(agent=True)"
            )
            return attempt
        attempt.accepted, attempt.status, attempt.reason = True, 101, "accepted"
        return attempt

    async def handle(self, request: web.Request) -> web.StreamResponse:
        backend = self._backend
        attempt = self._check_worker_token(request)
        backend.record_connection(attempt)
        if not attempt.accepted:
            logger.info("rejected worker connection: %s", attempt.reason)
            return web.Response(status=401, text=attempt.reason)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            first = await ws.receive(timeout=_REGISTER_TIMEOUT)
        except asyncio.TimeoutError:
            await ws.close(code=1008, message=b"expected register within 10s")
            return ws
        msg = agent.WorkerMessage()
        if first.type == WSMsgType.BINARY:
            msg.ParseFromString(first.data)
        if not msg.HasField("register"):
            await ws.close(code=1008, message=b"the first worker message must be register")
            return ws
        worker = backend.register_worker(attempt, msg.register)
        backend.attach_socket(worker.id, ws, request.transport)
        try:
            reply = agent.ServerMessage(
                register=agent.RegisterWorkerResponse(
                    worker_id=worker.id,
                    server_info=models.ServerInfo(
                        edition=models.ServerInfo.Standard,
                        version="livekit-standin",
                        protocol=16,
                        region="local",
                        node_id="standin",
                        agent_protocol=1,
                    ),
                )
            )
            await ws.send_bytes(reply.SerializeToString())
            await backend.dispatch_waiting(worker.agent_name)
            async for frame in ws:
                if frame.type != WSMsgType.BINARY:
                    continue
                message = agent.WorkerMessage()
                message.ParseFromString(frame.data)
                await self._on_worker_message(worker.id, message)
        finally:
            backend.worker_gone(worker.id)
        return ws

    async def _on_worker_message(self, worker_id: str, msg: agent.WorkerMessage) -> None:
        backend = self._backend
        which = msg.WhichOneof("message")
        if which == "ping":
            pong = agent.WorkerPong(last_timestamp=msg.ping.timestamp, timestamp=int(time.time() * 1000))
            await backend.send(worker_id, agent.ServerMessage(pong=pong))
        elif which == "update_worker":
            await backend.on_update_worker(worker_id, msg.update_worker)
        elif which == "availability":
            await backend.on_availability(worker_id, msg.availability)
        elif which == "update_job":
            backend.on_update_job(worker_id, msg.update_job)
        elif which == "migrate_job":
            backend.on_migrate(worker_id, [*msg.migrate_job.job_ids, *(j.id for j in msg.migrate_job.jobs)])
        else:
            logger.info("worker %s sent %s, which the stand-in does not handle", worker_id, which)
