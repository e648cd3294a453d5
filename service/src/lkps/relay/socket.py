"""``/agent``: a worker's websocket ends here. The platform-signed agent token is checked before the upgrade
(as LiveKit checks its own), the worker's first message must be ``register`` under the token's agent, and then
protobuf messages go both ways over the relay's own connection to LiveKit.

What passes is LiveKit's protocol unchanged, except: the upstream registration names the token's agent; a
second ``register`` and ``simulate_job`` (LiveKit would hand the worker a job, and a room token, for any room
it names) are dropped; a ``JobAssignment`` without a URL gets LiveKit's (the worker's own URL is the relay's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from livekit.protocol import agent
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..domain.audit import JobAssigned, WorkerClosed, WorkerConnection
from ..domain.ids import Ids
from ..domain.times import utc
from ..errors import ApiError
from ..observability.refusals import Refusals
from ..storage.audit_writer import AuditWriter
from . import agent_tokens
from .agent_tokens import AgentClaims, AgentTokenError, AgentTokenVerifier
from .binding import binding_refusal
from .connections import INTERNAL_ERROR, POLICY_VIOLATION, SERVICE_RESTART, Connections, RelayConnection
from .monitor import Statuses
from .upstream import LiveKitUpstream, UpstreamRefusedError

log = logging.getLogger(__name__)

ROUTE = "/agent"
REGISTER_TIMEOUT = 10.0
_FORWARDED_PARAMS = ("protocol", "worker_token")
_NORMAL = 1000
# Worker messages never passed on: a second register (the name is bound once), and simulate_job, for which
# livekit-server assigns the worker a job, with a room token, in any room the message names.
_DROPPED = frozenset({"register", "simulate_job"})
# LiveKit's messages are read only when they are a register answer or a job assignment: the first byte of a
# ServerMessage is its one field's tag (field 1, register; field 3, assignment; length-delimited).
_READ_TAGS = frozenset({0x0A, 0x1A})


@dataclass
class AgentRelay:
    verifier: AgentTokenVerifier
    statuses: Statuses
    upstream: LiveKitUpstream
    connections: Connections
    audit: AuditWriter
    ids: Ids
    livekit_url: str
    clock: Callable[[], float]
    # counts and logs (rate-limited) every refused worker connection, as the API's refusals
    refusals: Refusals

    async def serve(self, websocket: WebSocket) -> None:
        now = self.clock()
        try:
            claims = self.verifier.verify(_bearer(websocket), now)
            await self._check_not_revoked(claims, now)
        except AgentTokenError as exc:
            self.refused(
                websocket, ApiError(401, "unauthorized", exc.detail, "Authorization", reason=exc.reason)
            )
            await websocket.send_denial_response(PlainTextResponse(exc.detail, status_code=401))
            return
        await websocket.accept()
        session = _Session(self, websocket, claims)
        await session.run()

    def refused(self, websocket: WebSocket, error: ApiError) -> None:
        client = websocket.client
        self.refusals(ROUTE, error, client.host if client else None)

    async def _check_not_revoked(self, claims: AgentClaims, now: float) -> None:
        """The agent's row as stored now (another replica or ``lkps agents revoke`` may have revoked it): read
        per connection, not from the registry's cache. Should the database be down, the token stands, as
        registrations do then; the monitor checks again once it is back."""
        try:
            status = (await self.statuses([claims.agent_name])).get(claims.agent_name)
        except Exception as exc:
            log.warning("relay could not read the agent's revocation", extra={"error": type(exc).__name__})
            return
        revoked_at = status.revoked_at if status is not None else None
        if revoked_at is not None and revoked_at.timestamp() >= claims.issued_at:
            raise AgentTokenError(
                "the agent was revoked after this token was issued: register again (the platform asks Entra"
                " whether the agent may)",
                reason=agent_tokens.REVOKED,
            )


def _bearer(websocket: WebSocket) -> str:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AgentTokenError(
            "missing 'Authorization: Bearer <agent token>' header", reason=agent_tokens.MISSING
        )
    return token.strip()


class _Session:
    """One relayed worker: its websocket, its upstream connection, and their ends."""

    def __init__(self, relay: AgentRelay, websocket: WebSocket, claims: AgentClaims) -> None:
        self._relay = relay
        self._ws = websocket
        self._claims = claims
        self._upstream: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._closed = False  # the worker's websocket
        self._ending = False  # close() was called: the first reason stands
        self._announced = ""
        self._close_code = _NORMAL
        self._close_reason = ""
        self.connection = RelayConnection(relay.ids.new(), claims, self.close)

    async def run(self) -> None:
        relay, claims = self._relay, self._claims
        register = await self._first_register()
        if register is None:
            return
        announced = register.register.agent_name
        refusal = binding_refusal(claims, announced)
        if refusal is not None:
            # the announced name is in the audit row (worker_connections), not in the rate-limited line
            error = ApiError(403, "forbidden", refusal, "agent_name", reason=agent_tokens.NAME_MISMATCH)
            relay.refused(self._ws, error)
            self._audit_connection(announced, "refused", refusal, None)
            await self.close(POLICY_VIOLATION, refusal)
            return
        register.register.agent_name = claims.agent_name
        params = {k: v for k, v in self._ws.query_params.items() if k in _FORWARDED_PARAMS}
        try:
            self._upstream = await relay.upstream.connect(claims, params, int(relay.clock()))
        except UpstreamRefusedError as exc:
            log.warning("worker not relayed: %s", exc.reason, extra={"agent_entra_app_id": claims.agent_name})
            await self.close(INTERNAL_ERROR, exc.reason + "; reconnect later")
            return
        relay.connections.add(self.connection)
        try:
            self._announced = announced
            await self._upstream.send_bytes(register.SerializeToString())
            await self._pump()
        finally:
            relay.connections.remove(self.connection)
            await self.close(SERVICE_RESTART, "the relayed connection ended: reconnect")
            relay.audit.submit(
                WorkerClosed(self.connection.id, utc(relay.clock()), self._close_code, self._close_reason)
            )

    async def _first_register(self) -> agent.WorkerMessage | None:
        try:
            first = await asyncio.wait_for(self._ws.receive(), REGISTER_TIMEOUT)
        except asyncio.TimeoutError:
            await self.close(POLICY_VIOLATION, f"expected register within {REGISTER_TIMEOUT:.0f}s")
            return None
        if first["type"] == "websocket.disconnect":
            self._closed = True
            return None
        message = agent.WorkerMessage()
        data = first.get("bytes")
        if data is not None:
            with contextlib.suppress(Exception):
                message.ParseFromString(data)
        if not message.HasField("register"):
            await self.close(POLICY_VIOLATION, "the first worker message must be register")
            return None
        return message

    async def _pump(self) -> None:
        tasks = [
            asyncio.create_task(self._to_livekit()),
            asyncio.create_task(self._to_worker()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _to_livekit(self) -> None:
        upstream = self._upstream
        assert upstream is not None
        while True:
            try:
                message = await self._ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                self._closed = True
                if not self._ending:
                    self._ending = True
                    self._close_code = int(message.get("code") or _NORMAL)
                    self._close_reason = "the worker closed its connection"
                return
            data = message.get("bytes")
            if data is None:
                continue  # LiveKit's protocol is binary; text frames are ignored there too
            checked = self._checked(data)
            if checked is None:
                continue
            try:
                await upstream.send_bytes(checked)
            except (ConnectionError, RuntimeError):
                return

    def _checked(self, data: bytes) -> bytes | None:
        """The worker's message as LiveKit is to read it, or ``None`` to drop it. What goes on is the message
        as parsed here, serialised again: never bytes another parser might read differently."""
        message = agent.WorkerMessage()
        try:
            message.ParseFromString(data)
        except Exception:
            which = "unparsable message"
        else:
            which = message.WhichOneof("message") or ""
            if which not in _DROPPED:
                # "" is a message this protocol version does not know: its unknown fields go on as they came
                return message.SerializeToString()
        log.warning(
            "worker message dropped: %s",
            which,
            extra={"agent_entra_app_id": self._claims.agent_name, "worker_id": self.connection.worker_id},
        )
        return None

    async def _to_worker(self) -> None:
        upstream = self._upstream
        assert upstream is not None
        async for frame in upstream:
            if frame.type != aiohttp.WSMsgType.BINARY:
                continue
            data = self._server_message(frame.data)
            try:
                await self._ws.send_bytes(data)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
        # LiveKit closed (a restart: 1012) or was lost: the worker reconnects, through any replica
        if not self._ending:
            code = upstream.close_code
            code = SERVICE_RESTART if code in (None, _NORMAL, 1006) else code
            await self.close(code, "LiveKit closed the worker connection: reconnect")

    def _server_message(self, data: bytes) -> bytes:
        if not data or data[0] not in _READ_TAGS:
            return data
        message = agent.ServerMessage()
        try:
            message.ParseFromString(data)
        except Exception:
            return data
        which = message.WhichOneof("message")
        if which == "register":
            self.connection.worker_id = message.register.worker_id
            self._audit_connection(self._announced, "registered", None, message.register.worker_id)
            log.info(
                "worker registered through the relay",
                extra={
                    "agent_entra_app_id": self._claims.agent_name,
                    "worker_identity": self._claims.identity,
                    "worker_id": message.register.worker_id,
                },
            )
        elif which == "assignment":
            assignment = message.assignment
            self._audit_assignment(assignment)
            if not assignment.url:
                assignment.url = self._relay.livekit_url
                return message.SerializeToString()
        return data

    def _audit_connection(
        self, announced: str, outcome: str, reason: str | None, worker_id: str | None
    ) -> None:
        relay, claims = self._relay, self._claims
        relay.audit.submit(
            WorkerConnection(
                id=self.connection.id,
                entra_app_id=claims.agent_name,
                worker_identity=claims.identity,
                registration_id=claims.registration_id,
                announced_agent_name=announced[:128],
                outcome=outcome,
                reason=reason,
                worker_id=worker_id,
                opened_at=utc(relay.clock()),
            )
        )

    def _audit_assignment(self, assignment: agent.JobAssignment) -> None:
        relay, claims = self._relay, self._claims
        relay.audit.submit(
            JobAssigned(
                id=relay.ids.new(),
                job_id=assignment.job.id,
                room_name=assignment.job.room.name,
                worker_id=self.connection.worker_id,
                entra_app_id=claims.agent_name,
                worker_identity=claims.identity,
                registration_id=claims.registration_id,
                connection_id=self.connection.id,
                assigned_at=utc(relay.clock()),
            )
        )
        log.info(
            "job assigned through the relay",
            extra={
                "agent_entra_app_id": claims.agent_name,
                "worker_id": self.connection.worker_id,
                "job_id": assignment.job.id,
                "room_name": assignment.job.room.name,
            },
        )

    async def close(self, code: int, reason: str) -> None:
        """End both sides (the worker's with ``code`` and ``reason``); later calls do nothing."""
        if not self._ending:
            self._ending = True
            self._close_code, self._close_reason = code, reason
        upstream = self._upstream
        if upstream is not None and not upstream.closed:
            with contextlib.suppress(Exception):
                await upstream.close()
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                # a close reason is at most 123 bytes (RFC 6455)
                await self._ws.close(
                    self._close_code, self._close_reason.encode()[:123].decode(errors="ignore")
                )
