"""The LiveKit stand-in's backend: its state (connections, workers, jobs, rooms, webhooks), room joins and the
timers that close rooms and re-offer jobs.

The layers below it hold the rest of the domain: ``workers`` (registrations and their sockets) and
``dispatch`` (jobs offered, accepted, running, ended). The wire (``agent_socket``, ``responses``) calls
this; the stand-in (``standin``) runs it on its server loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from livekit.api.access_token import Claims
from livekit.protocol import agent

from .dispatch import JobDispatch
from .exceptions import RoomRequestError, TokenRejectedError
from .records import (
    ConnectionAttempt,
    Job,
    JobTransition,
    JoinResult,
    Participant,
    Room,
    WebhookDelivery,
    Worker,
    new_id,
    to_jsonable,
)
from .rooms import RoomRegistry
from .tokens import TokenAuthority
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)

_REAPER_INTERVAL = 0.05


class LiveKitBackend(JobDispatch):
    """Everything the LiveKit stand-in knows, behind one re-entrant lock; thread-safe.

    ``ws_url`` is a callable because the server's URL is known only once it listens.
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        ws_url: Callable[[], str],
        webhook_url: str | None,
        departure_timeout: float,
        empty_timeout: int,
        job_migration_grace: float,
        availability_timeout: float,
        webhook_max_attempts: int,
        webhook_retry_backoff: float,
    ) -> None:
        self.job_migration_grace = job_migration_grace
        self.availability_timeout = availability_timeout
        self._ws_url = ws_url
        self.authority = TokenAuthority(api_key, api_secret)
        self._state = threading.RLock()
        self._webhooks = (
            WebhookSender(
                webhook_url,
                self.authority,
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

    def summary(self) -> str:
        with self._state:
            workers = [f"{w.id}({w.agent_name!r}, connected={w.connected})" for w in self._workers.values()]
            jobs = [f"{j.id}({j.agent_name!r}, {j.status}, {j.error!r})" for j in self._jobs.values()]
            rejected = [c.reason for c in self._connections if not c.accepted][-3:]
        return f"workers={workers} jobs={jobs} last rejected connections={rejected}"

    # -- rooms ---------------------------------------------------------------------------------------------

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

    async def join_room(self, participant_token: str) -> JoinResult:
        try:
            _, claims = self.authority.verify(participant_token)
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
            await self.dispatch(job.id)
        return result

    def leave_room(self, room_name: str, identity: str) -> None:
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
            await self.send(worker_id, agent.ServerMessage(termination=agent.JobTermination(job_id=job_id)))

    # -- timers --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Run on the server loop once it listens: the webhook sender and the timer task."""
        if self._webhooks is not None:
            await self._webhooks.start()
        self._reaper = asyncio.create_task(self._reap_forever(), name="livekit-standin-reaper")

    async def stop(self) -> None:
        """Run on the server loop before it stops: timers first, then every worker socket, then webhooks."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self.close_workers()
        if self._webhooks is not None:
            await self._webhooks.stop()

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
            await self.dispatch(job_id)
        for room in closing:
            await self._close_room(room, "departure timeout")
