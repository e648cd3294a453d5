"""A LiveKit server stand-in: the agent worker websocket, room-config dispatch and signed webhooks, no media.

Semantics a test can rely on (and where they differ from a real LiveKit server):

* ``/agent`` takes ``Authorization: Bearer <jwt>`` (HS256, the stand-in's key/secret, unexpired,
  ``video.agent``) and otherwise answers the upgrade with HTTP 401 and the reason. Every attempt is
  recorded with the verified claims and a sha256 fingerprint of the token, never the token.
* Rooms are created by :meth:`LiveKitStandIn.join`; the creating token's ``roomConfig`` applies
  (``max_participants`` counts standard participants only, ``departure_timeout``, ``agents`` dispatches),
  later tokens' ``roomConfig`` is ignored, as on LiveKit. ``empty_timeout`` is reported but never fires:
  rooms here always start with a participant.
* There is no media server (``/rtc``, ``/twirp`` answer 404): a job reaching ``JS_RUNNING`` counts as its
  agent participant joining; the job ending, or its worker staying away longer than
  ``job_migration_grace``, as the agent leaving. A reconnecting worker that reports its jobs
  (``migrate_job``, or ``update_job`` for a job it was running) keeps them.
* A dispatch whose agent has no registered worker stays ``JS_PENDING`` until a worker with that
  ``agent_name`` registers (or frees up), as LiveKit does; it fails only when its room closes first.
* A room with no standard participant left closes ``departure_timeout`` seconds later; its open jobs are
  terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Literal, TypeVar

from aiohttp import WSMsgType, web
from google.protobuf.json_format import MessageToDict
from livekit.api.access_token import Claims
from livekit.protocol import agent, models

from ._livekit_records import (
    ConnectionAttempt,
    Job,
    JobTransition,
    JoinResult,
    Participant,
    Room,
    TokenClaims,
    WebhookDelivery,
    Worker,
    new_id,
    to_jsonable,
    utcnow,
)
from ._livekit_rooms import RoomRegistry, room_proto
from ._livekit_tokens import TokenAuthority, TokenRejectedError, fingerprint
from ._livekit_webhooks import WebhookSender
from ._server import StandInServer, json_response, serve_forever

__all__ = [
    "ConnectionAttempt",
    "Job",
    "JoinResult",
    "LiveKitStandIn",
    "Participant",
    "Room",
    "RoomRequestError",
    "TokenClaims",
    "WebhookDelivery",
    "Worker",
    "main",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_ENDED = ("JS_SUCCESS", "JS_FAILED", "JS_CANCELLED")
_REAPER_INTERVAL = 0.05
_REGISTER_TIMEOUT = 10.0
_POLL_INTERVAL = 0.02
_DECLINE_BACKOFF = 1.0  # a worker that declined a job (busy) is asked again after this long


class RoomRequestError(Exception):
    """A join/leave/terminate the stand-in refused; ``status`` is the HTTP status the admin route answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _generated_api_key() -> str:
    return "APIstandin" + secrets.token_hex(16)


class LiveKitStandIn(StandInServer):
    """A plain http/ws LiveKit stand-in on 127.0.0.1 for real livekit-agents workers and livekit-api clients.

    ``api_key``/``api_secret`` default to fresh random values (attributes of the same names). Inspect with
    :attr:`connections`, :attr:`workers`, :attr:`jobs`, :attr:`rooms`, :attr:`webhook_deliveries` (copies);
    wait with :meth:`wait_for_worker`, :meth:`wait_for_job_status`, :meth:`wait_until` (and ``*_async``).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        webhook_url: str | None = None,
        departure_timeout: float = 20.0,
        empty_timeout: int = 300,
        job_migration_grace: float = 10.0,
        availability_timeout: float = 10.0,
        webhook_max_attempts: int = 5,
        webhook_retry_backoff: float = 0.2,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        if (api_key is None) != (api_secret is None):
            raise ValueError("api_key and api_secret: pass both or neither (neither generates a random pair)")
        self.secret_generated = api_secret is None
        self.api_key: str = api_key if api_key is not None else _generated_api_key()
        self.api_secret: str = api_secret if api_secret is not None else secrets.token_urlsafe(48)
        if len(self.api_secret.encode()) < 32:
            raise ValueError(
                "api_secret is shorter than 32 bytes: HS256 keys that short are rejected, use longer"
            )
        self.webhook_url = webhook_url
        self.departure_timeout = departure_timeout
        self.empty_timeout = empty_timeout
        self.job_migration_grace = job_migration_grace
        self.availability_timeout = availability_timeout
        self._authority = TokenAuthority(self.api_key, self.api_secret)
        self._state = threading.RLock()
        self._webhooks = (
            WebhookSender(
                webhook_url,
                self._authority,
                self._state,
                max_attempts=webhook_max_attempts,
                retry_backoff=webhook_retry_backoff,
            )
            if webhook_url
            else None
        )
        self._connections: list[ConnectionAttempt] = []
        self._workers: dict[str, Worker] = {}
        self._jobs: dict[str, Job] = {}
        self._rooms = RoomRegistry(
            self._webhooks, departure_timeout=departure_timeout, empty_timeout=empty_timeout
        )
        # monotonic deadlines, checked by the reaper task so they survive restart()
        self._offer_deadline: dict[str, float] = {}
        self._assigned: set[str] = set()
        self._declined: dict[tuple[str, str], float] = {}
        self._lost_since: dict[str, float] = {}
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._transports: dict[str, asyncio.Transport | None] = {}
        self._reaper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        where = self.ws_url if self.running else "not running"
        return f"LiveKitStandIn({where}, api_key={self.api_key!r})"

    # -- server wiring -------------------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.url, "ws_url": self.ws_url, "api_key": self.api_key}
        if self.secret_generated:  # the caller has no other way to learn a generated secret
            info["api_secret"] = self.api_secret
        if self.webhook_url:
            info["webhook_url"] = self.webhook_url
        return info

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._health)
        app.router.add_get("/agent", self._agent_socket)
        app.router.add_route("*", "/rtc", self._no_media)
        app.router.add_route("*", "/rtc/{tail:.*}", self._no_media)
        app.router.add_route("*", "/twirp/{tail:.*}", self._no_media)
        app.router.add_get("/_standin/state", self._admin_state)
        app.router.add_post("/_standin/join", self._admin_join)
        app.router.add_post("/_standin/leave", self._admin_leave)
        app.router.add_post("/_standin/drop-workers", self._admin_drop_workers)
        app.router.add_post("/_standin/jobs/{job_id}/terminate", self._admin_terminate)
        return app

    async def on_started(self) -> None:
        if self._webhooks is not None:
            await self._webhooks.start()
        self._reaper = asyncio.create_task(self._reap_forever(), name="livekit-standin-reaper")

    async def on_stopping(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        sockets = list(self._sockets.items())
        for worker_id, ws in sockets:
            self._worker_gone(worker_id)
            await ws.close(code=1012, message=b"server restarting")
        if self._webhooks is not None:
            await self._webhooks.stop()

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _no_media(self, request: web.Request) -> web.Response:
        return web.Response(
            status=404,
            text=f"{request.path}: the LiveKit stand-in has no media server; only /agent and webhooks exist",
        )

    # -- inspection ----------------------------------------------------------------------------------------

    @property
    def connections(self) -> list[ConnectionAttempt]:
        with self._state:
            return copy.deepcopy(self._connections)

    @property
    def workers(self) -> list[Worker]:
        with self._state:
            return copy.deepcopy(list(self._workers.values()))

    @property
    def jobs(self) -> list[Job]:
        with self._state:
            return copy.deepcopy(list(self._jobs.values()))

    @property
    def rooms(self) -> list[Room]:
        with self._state:
            return copy.deepcopy(self._rooms.rooms)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        if self._webhooks is None:
            return []
        with self._state:
            return copy.deepcopy(self._webhooks.deliveries)

    def job(self, job_id: str) -> Job:
        with self._state:
            if job_id not in self._jobs:
                raise KeyError(f"job_id={job_id!r} is unknown: known jobs are {sorted(self._jobs)}")
            return copy.deepcopy(self._jobs[job_id])

    def room(self, name: str) -> Room:
        """The latest room with that name (open, or the last one closed)."""
        with self._state:
            for room in reversed(self._rooms.rooms):
                if room.name == name:
                    return copy.deepcopy(room)
        raise KeyError(f"room {name!r} was never created: join it with a participant token first")

    def state(self) -> dict[str, Any]:
        """Everything above as JSON-ready data (what ``GET /_standin/state`` answers)."""
        with self._state:
            return {
                "connections": to_jsonable(self._connections),
                "workers": to_jsonable(list(self._workers.values())),
                "jobs": to_jsonable(list(self._jobs.values())),
                "rooms": to_jsonable(self._rooms.rooms),
                "webhook_deliveries": to_jsonable(self._webhooks.deliveries if self._webhooks else []),
            }

    # -- waiting -------------------------------------------------------------------------------------------

    def _summary(self) -> str:
        with self._state:
            workers = [f"{w.id}({w.agent_name!r}, connected={w.connected})" for w in self._workers.values()]
            jobs = [f"{j.id}({j.agent_name!r}, {j.status}, {j.error!r})" for j in self._jobs.values()]
            rejected = [c.reason for c in self._connections if not c.accepted][-3:]
        return f"workers={workers} jobs={jobs} last rejected connections={rejected}"

    def wait_until(
        self,
        predicate: Callable[[], _T | Literal[False] | None],
        *,
        timeout: float = 10.0,
        what: str = "condition",
    ) -> _T:
        """Poll ``predicate`` until it returns something truthy and return that; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {timeout}s; {self._summary()}")
            time.sleep(_POLL_INTERVAL)

    async def wait_until_async(
        self,
        predicate: Callable[[], _T | Literal[False] | None],
        *,
        timeout: float = 10.0,
        what: str = "condition",
    ) -> _T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {timeout}s; {self._summary()}")
            await asyncio.sleep(_POLL_INTERVAL)

    def _connected_worker(self, agent_name: str, not_in: Collection[str]) -> Callable[[], Worker | None]:
        def find() -> Worker | None:
            return next(
                (
                    w
                    for w in self.workers
                    if w.connected and w.agent_name == agent_name and w.id not in not_in
                ),
                None,
            )

        return find

    def _job_reached(self, job_id: str, status: str) -> Callable[[], Job | None]:
        def find() -> Job | None:
            job = self.job(job_id)
            if status in job.statuses:
                return job
            if job.ended:
                raise AssertionError(
                    f"job {job_id} ended as {job.status} ({job.error!r}) without reaching {status}"
                )
            return None

        return find

    def wait_for_worker(
        self, agent_name: str, *, timeout: float = 30.0, not_in: Collection[str] = ()
    ) -> Worker:
        """A connected worker registered under ``agent_name`` whose id is not in ``not_in``."""
        what = f"a worker for agent_name={agent_name!r} registering"
        return self.wait_until(self._connected_worker(agent_name, not_in), timeout=timeout, what=what)

    async def wait_for_worker_async(
        self, agent_name: str, *, timeout: float = 30.0, not_in: Collection[str] = ()
    ) -> Worker:
        what = f"a worker for agent_name={agent_name!r} registering"
        return await self.wait_until_async(
            self._connected_worker(agent_name, not_in), timeout=timeout, what=what
        )

    def wait_for_job_status(self, job_id: str, status: str, *, timeout: float = 30.0) -> Job:
        """The job once it has passed through ``status`` (a JobStatus name such as ``"JS_RUNNING"``)."""
        what = f"job {job_id} reaching {status}"
        return self.wait_until(self._job_reached(job_id, status), timeout=timeout, what=what)

    async def wait_for_job_status_async(self, job_id: str, status: str, *, timeout: float = 30.0) -> Job:
        what = f"job {job_id} reaching {status}"
        return await self.wait_until_async(self._job_reached(job_id, status), timeout=timeout, what=what)

    # -- control -------------------------------------------------------------------------------------------

    def join(self, participant_token: str) -> JoinResult:
        """Join the room named in the token's video grant (creating it); raises :class:`RoomRequestError`.

        Callable from any thread but the stand-in's own loop (admin routes use ``_join`` there).
        """
        return self.call(lambda: self._join(participant_token))

    def leave(self, room: str, identity: str) -> None:
        async def _leave() -> None:
            self._leave(room, identity)

        self.call(_leave)

    def terminate_job(self, job_id: str) -> None:
        """Send ``JobTermination`` to the worker running the job (its process closes, the job ends)."""
        self.call(lambda: self._terminate(job_id))

    def drop_workers(self) -> int:
        """Cut every worker connection at the TCP level, like a crash or network drop; returns the count."""

        async def _drop() -> int:
            return self._drop_workers()

        return self.call(_drop)

    # -- admin routes (process mode): loopback only, unauthenticated like the rest of a test stand-in -------

    async def _admin_state(self, _: web.Request) -> web.Response:
        return json_response(self.state())

    async def _json_body(self, request: web.Request, *fields: str) -> dict[str, str]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or any(not isinstance(body.get(f), str) for f in fields):
            raise RoomRequestError(400, f"body must be a JSON object with string fields {list(fields)}")
        return {f: body[f] for f in fields}

    async def _admin_join(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request, "token")
            result = await self._join(body["token"])
        except RoomRequestError as exc:
            return json_response({"error": exc.reason}, status=exc.status)
        return json_response(to_jsonable(result))

    async def _admin_leave(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request, "room", "identity")
            self._leave(body["room"], body["identity"])
        except RoomRequestError as exc:
            return json_response({"error": exc.reason}, status=exc.status)
        return json_response({"left": True})

    async def _admin_drop_workers(self, _: web.Request) -> web.Response:
        return json_response({"dropped": self._drop_workers()})

    async def _admin_terminate(self, request: web.Request) -> web.Response:
        try:
            await self._terminate(request.match_info["job_id"])
        except RoomRequestError as exc:
            return json_response({"error": exc.reason}, status=exc.status)
        return json_response({"terminating": True})

    # -- the agent websocket -------------------------------------------------------------------------------

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
            attempt.claims, _ = self._authority.verify(token)
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

    async def _agent_socket(self, request: web.Request) -> web.StreamResponse:
        attempt = self._check_worker_token(request)
        with self._state:
            self._connections.append(attempt)
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
        worker = self._register(attempt, msg.register)
        self._sockets[worker.id] = ws
        self._transports[worker.id] = request.transport
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
            await self._dispatch_waiting(worker.agent_name)
            async for frame in ws:
                if frame.type != WSMsgType.BINARY:
                    continue
                message = agent.WorkerMessage()
                message.ParseFromString(frame.data)
                await self._on_worker_message(worker.id, message)
        finally:
            self._worker_gone(worker.id)
        return ws

    def _register(self, attempt: ConnectionAttempt, req: agent.RegisterWorkerRequest) -> Worker:
        worker = Worker(
            id=new_id("AW"),
            agent_name=req.agent_name,
            connection=attempt,
            version=req.version,
            namespace=req.namespace,
            deployment=req.deployment,
            permissions=MessageToDict(req.allowed_permissions, preserving_proto_field_name=True),
        )
        with self._state:
            attempt.worker_id = worker.id
            self._workers[worker.id] = worker
        logger.info("registered worker %s for agent_name=%r", worker.id, worker.agent_name)
        return worker

    def _worker_gone(self, worker_id: str) -> None:
        self._sockets.pop(worker_id, None)
        self._transports.pop(worker_id, None)
        now = time.monotonic()
        with self._state:
            worker = self._workers.get(worker_id)
            if worker is None or not worker.connected:
                return
            worker.connected = False
            worker.disconnected_at = utcnow()
            for job in self._jobs.values():
                if job.worker_id != worker_id or job.ended:
                    continue
                if job.id in self._assigned:
                    self._lost_since[job.id] = now  # may come back through migrate_job
                else:  # an open offer: the reaper offers the job to another worker
                    self._offer_deadline.pop(job.id, None)
                    job.worker_id = None

    def _drop_workers(self) -> int:
        dropped = 0
        for worker_id, transport in list(self._transports.items()):
            if transport is not None:
                transport.abort()
                dropped += 1
            self._worker_gone(worker_id)
        return dropped

    async def _send(self, worker_id: str, message: agent.ServerMessage) -> bool:
        ws = self._sockets.get(worker_id)
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_bytes(message.SerializeToString())
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _on_worker_message(self, worker_id: str, msg: agent.WorkerMessage) -> None:
        which = msg.WhichOneof("message")
        if which == "ping":
            pong = agent.WorkerPong(last_timestamp=msg.ping.timestamp, timestamp=int(time.time() * 1000))
            await self._send(worker_id, agent.ServerMessage(pong=pong))
        elif which == "update_worker":
            await self._on_update_worker(worker_id, msg.update_worker)
        elif which == "availability":
            await self._on_availability(worker_id, msg.availability)
        elif which == "update_job":
            self._on_update_job(worker_id, msg.update_job)
        elif which == "migrate_job":
            self._on_migrate(worker_id, [*msg.migrate_job.job_ids, *(j.id for j in msg.migrate_job.jobs)])
        else:
            logger.info("worker %s sent %s, which the stand-in does not handle", worker_id, which)

    async def _on_update_worker(self, worker_id: str, update: agent.UpdateWorkerStatus) -> None:
        with self._state:
            worker = self._workers[worker_id]
            became_available = update.status == agent.WS_AVAILABLE and worker.status != "WS_AVAILABLE"
            worker.status = agent.WorkerStatus.Name(update.status)
            worker.load = update.load
            worker.job_count = update.job_count
        if became_available:
            await self._dispatch_waiting(worker.agent_name)

    def _on_migrate(self, worker_id: str, job_ids: list[str]) -> None:
        with self._state:
            worker = self._workers[worker_id]
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None or job.ended:
                    logger.info("worker %s reported job %s, which is unknown or ended", worker_id, job_id)
                    continue
                job.worker_id = worker_id
                job.migrations.append(worker_id)
                self._assigned.add(job_id)
                self._lost_since.pop(job_id, None)
                if job_id not in worker.jobs:
                    worker.jobs.append(job_id)

    # -- dispatch ------------------------------------------------------------------------------------------

    def _job_proto(self, job: Job) -> agent.Job:
        room = next((r for r in self._rooms.rooms if r.sid == job.room_sid), None)
        return agent.Job(
            id=job.id,
            dispatch_id=job.dispatch_id,
            type=agent.JT_ROOM,
            room=room_proto(room) if room else models.Room(sid=job.room_sid, name=job.room_name),
            metadata=job.metadata,
            agent_name=job.agent_name,
            state=agent.JobState(
                status=job.status,
                participant_identity=job.participant_identity,
                worker_id=job.worker_id or "",
                updated_at=int(time.time() * 1000),
            ),
        )

    def _pick_worker(self, job: Job) -> Worker | None:
        now = time.monotonic()
        candidates = [
            w
            for w in self._workers.values()
            if w.connected
            and w.id in self._sockets
            and w.agent_name == job.agent_name
            and w.status == "WS_AVAILABLE"
            and now - self._declined.get((job.id, w.id), -_DECLINE_BACKOFF) >= _DECLINE_BACKOFF
        ]
        return min(candidates, key=lambda w: (w.load, w.job_count), default=None)

    async def _dispatch(self, job_id: str) -> None:
        with self._state:
            job = self._jobs[job_id]
            if job.ended or job.worker_id is not None:
                return
            worker = self._pick_worker(job)
            if worker is None:
                return  # stays pending until a matching worker registers or becomes available
            job.worker_id = worker.id
            job.offered_to.append(worker.id)
            self._offer_deadline[job_id] = time.monotonic() + self.availability_timeout
            request = agent.ServerMessage(availability=agent.AvailabilityRequest(job=self._job_proto(job)))
        if not await self._send(worker.id, request):
            with self._state:
                job.worker_id = None
                self._offer_deadline.pop(job_id, None)

    async def _dispatch_waiting(self, agent_name: str) -> None:
        with self._state:
            waiting = [
                j.id
                for j in self._jobs.values()
                if j.agent_name == agent_name and not j.ended and j.worker_id is None
            ]
        for job_id in waiting:
            await self._dispatch(job_id)

    async def _on_availability(self, worker_id: str, resp: agent.AvailabilityResponse) -> None:
        with self._state:
            job = self._jobs.get(resp.job_id)
            if job is None or job.worker_id != worker_id or job.id in self._assigned or job.ended:
                logger.info(
                    "worker %s answered availability for job %s it was not offered", worker_id, resp.job_id
                )
                return
            self._offer_deadline.pop(job.id, None)
            if not resp.available:
                job.worker_id = None
                self._declined[(job.id, worker_id)] = time.monotonic()
                if resp.terminate:
                    self._set_status(
                        job, "JS_FAILED", f"worker {worker_id} rejected the job and asked to end it"
                    )
                    return
            else:
                worker = self._workers[worker_id]
                identity = resp.participant_identity or f"agent-{job.id}"
                token = self._authority.mint_agent_join(
                    room=job.room_name,
                    identity=identity,
                    name=resp.participant_name,
                    metadata=resp.participant_metadata,
                    attributes=dict(resp.participant_attributes),
                    permissions=worker.permissions,
                )
                job.participant_identity = identity
                job.token_fingerprint = fingerprint(token)
                self._assigned.add(job.id)
                worker.jobs.append(job.id)
                assignment = agent.JobAssignment(job=self._job_proto(job), url=self.ws_url, token=token)
        if resp.available:
            await self._send(worker_id, agent.ServerMessage(assignment=assignment))
        else:
            await self._dispatch(resp.job_id)

    def _on_update_job(self, worker_id: str, update: agent.UpdateJobStatus) -> None:
        with self._state:
            job = self._jobs.get(update.job_id)
            # a reconnected worker flushes updates queued while it was away before it reports its jobs
            lost = job is not None and job.id in self._lost_since
            if lost and job is not None and self._workers[worker_id].agent_name == job.agent_name:
                self._on_migrate(worker_id, [job.id])
            if job is None or job.worker_id != worker_id:
                logger.info("worker %s updated job %s, which is not attached to it", worker_id, update.job_id)
                return
            self._set_status(job, agent.JobStatus.Name(update.status), update.error)

    def _set_status(self, job: Job, status: str, error: str = "") -> None:
        """Record a transition and its room effect: running joins the agent, an end makes it leave."""
        if job.history and job.history[-1].status == status and job.error == error:
            return
        job.status, job.error = status, error
        job.history.append(JobTransition(status=status, error=error, at=utcnow()))
        if status == "JS_RUNNING":
            self._agent_joined(job)
        elif status in _ENDED:
            for key in [k for k in self._declined if k[0] == job.id]:
                del self._declined[key]
            self._assigned.discard(job.id)
            self._offer_deadline.pop(job.id, None)
            self._lost_since.pop(job.id, None)
            self._agent_left(job)

    async def _terminate(self, job_id: str) -> None:
        with self._state:
            job = self._jobs.get(job_id)
            if job is None:
                raise RoomRequestError(404, f"job_id={job_id!r} is unknown")
            if job.ended:
                raise RoomRequestError(409, f"job {job_id} already ended as {job.status}")
            worker_id = job.worker_id
        if worker_id is None or job_id not in self._assigned:
            with self._state:
                self._set_status(job, "JS_FAILED", "terminated before a worker took the job")
            return
        if not await self._send(
            worker_id, agent.ServerMessage(termination=agent.JobTermination(job_id=job_id))
        ):
            raise RoomRequestError(409, f"job {job_id}: its worker {worker_id} is not connected, retry later")

    # -- rooms ---------------------------------------------------------------------------------------------

    def _agent_joined(self, job: Job) -> None:
        room = self._rooms.open_room_with_sid(job.room_name, job.room_sid)
        if room is None or job.participant_identity in room.participants:
            return
        participant = Participant(
            identity=job.participant_identity, sid=new_id("PA"), kind="AGENT", job_id=job.id
        )
        self._rooms.add(room, participant)

    def _agent_left(self, job: Job) -> None:
        room = self._rooms.open_room_with_sid(job.room_name, job.room_sid)
        if room is not None and job.participant_identity in room.participants:
            self._rooms.remove(room, job.participant_identity)

    def _create_room(self, name: str, claims: Claims) -> tuple[Room, list[Job]]:
        config = claims.room_config
        room = self._rooms.create(name, config)
        jobs = []
        for dispatch in config.agents if config else []:
            job = Job(
                id=new_id("AJ"),
                dispatch_id=new_id("AD"),
                agent_name=dispatch.agent_name,
                room_name=name,
                room_sid=room.sid,
                metadata=dispatch.metadata,
            )
            job.history.append(JobTransition(status="JS_PENDING", error="", at=job.created_at))
            self._jobs[job.id] = job
            room.jobs.append(job.id)
            jobs.append(job)
        return room, jobs

    async def _join(self, participant_token: str) -> JoinResult:
        try:
            _, claims = self._authority.verify(participant_token)
        except TokenRejectedError as exc:
            raise RoomRequestError(401, exc.reason) from None
        video = claims.video
        if video is None or not video.room_join or not video.room:
            raise RoomRequestError(
                401, "token has no roomJoin grant for a named room: set room_join and room"
            )
        if not claims.identity:
            raise RoomRequestError(401, "token has no identity (sub): set one with with_identity()")
        with self._state:
            room = self._rooms.open_room(video.room)
            created = room is None
            new_jobs: list[Job] = []
            if room is None:
                room, new_jobs = self._create_room(video.room, claims)
            elif self._rooms.is_full_for(room, claims.identity):
                raise RoomRequestError(
                    403, f"room {room.name!r} is full: max_participants={room.max_participants} reached"
                )
            participant = Participant(
                identity=claims.identity,
                sid=new_id("PA"),
                kind="AGENT" if claims.kind == "agent" else "STANDARD",
                name=claims.name,
                metadata=claims.metadata,
            )
            self._rooms.add(room, participant)
            result = JoinResult(
                room_name=room.name,
                room_sid=room.sid,
                identity=participant.identity,
                participant_sid=participant.sid,
                created_room=created,
                job_ids=[j.id for j in new_jobs],
            )
        for job in new_jobs:
            await self._dispatch(job.id)
        return result

    def _leave(self, room_name: str, identity: str) -> None:
        with self._state:
            room = self._rooms.open_room(room_name)
            if room is None:
                raise RoomRequestError(404, f"room {room_name!r} is not open")
            if identity not in room.participants:
                raise RoomRequestError(404, f"identity {identity!r} is not in room {room_name!r}")
            self._rooms.remove(room, identity)

    async def _close_room(self, room: Room, reason: str) -> None:
        terminate: list[tuple[str, str]] = []
        with self._state:
            for job_id in room.jobs:
                job = self._jobs[job_id]
                if job.ended:
                    continue
                if job.id in self._assigned and job.worker_id is not None:
                    terminate.append((job.worker_id, job.id))
                else:
                    self._set_status(
                        job, "JS_FAILED", f"room {room.name!r} closed before a worker took the job"
                    )
            self._rooms.close(room, reason)
        for worker_id, job_id in terminate:
            await self._send(worker_id, agent.ServerMessage(termination=agent.JobTermination(job_id=job_id)))

    # -- timers --------------------------------------------------------------------------------------------

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(_REAPER_INTERVAL)
            try:
                await self._reap()
            except Exception:
                logger.exception("LiveKit stand-in timer pass failed")

    async def _reap(self) -> None:
        now = time.monotonic()
        with self._state:
            for job_id, deadline in list(self._offer_deadline.items()):
                if now > deadline:  # an unanswered offer counts as a decline
                    del self._offer_deadline[job_id]
                    job = self._jobs[job_id]
                    self._declined[(job_id, job.worker_id or "")] = now
                    job.worker_id = None
            # waiting jobs are retried on every pass: workers free up, declines age out
            waiting = [j.id for j in self._jobs.values() if not j.ended and j.worker_id is None]
            for job_id, since in list(self._lost_since.items()):
                if now - since > self.job_migration_grace:
                    job = self._jobs[job_id]
                    self._set_status(
                        job,
                        "JS_FAILED",
                        f"worker {job.worker_id} disconnected and no worker reported the job within "
                        f"{self.job_migration_grace}s",
                    )
            closing = self._rooms.due_for_closing(now)
        for job_id in waiting:
            await self._dispatch(job_id)
        for room in closing:
            await self._close_room(room, "departure timeout")


def main(argv: list[str] | None = None) -> None:
    """``python -m livekit_platform_sdk.testing.livekit_server``: serve until SIGTERM, print one JSON line.

    Key and secret come from ``--api-key``/``--api-secret`` or ``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``;
    with neither, a random pair is generated and the JSON line carries ``api_secret`` (the only way the caller
    can learn it). A secret the caller supplied is never printed.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--api-key", default=os.environ.get("LIVEKIT_API_KEY"))
    parser.add_argument("--api-secret", default=os.environ.get("LIVEKIT_API_SECRET"))
    parser.add_argument("--webhook-url", default=None, help="where to POST signed webhooks")
    parser.add_argument(
        "--departure-timeout", type=float, default=20.0, help="seconds, unless roomConfig says"
    )
    args = parser.parse_args(argv)
    if (args.api_key is None) != (args.api_secret is None):
        parser.error("--api-key and --api-secret (or LIVEKIT_API_KEY/LIVEKIT_API_SECRET) go together")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve_forever(
        LiveKitStandIn(
            api_key=args.api_key,
            api_secret=args.api_secret,
            webhook_url=args.webhook_url,
            departure_timeout=args.departure_timeout,
            port=args.port,
        )
    )


if __name__ == "__main__":
    main()
