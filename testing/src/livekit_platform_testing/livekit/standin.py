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

import asyncio
import secrets
import time
from collections.abc import Callable, Collection
from typing import Any, Literal, TypeVar

from aiohttp import web

from ..server import StandInServer
from .models import LiveKitBackend
from .records import ConnectionAttempt, Job, JoinResult, Room, WebhookDelivery, Worker
from .urls import build_app

_T = TypeVar("_T")

_POLL_INTERVAL = 0.02


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
        self.backend = LiveKitBackend(
            api_key=self.api_key,
            api_secret=self.api_secret,
            ws_url=lambda: self.ws_url,
            webhook_url=webhook_url,
            departure_timeout=departure_timeout,
            empty_timeout=empty_timeout,
            job_migration_grace=job_migration_grace,
            availability_timeout=availability_timeout,
            webhook_max_attempts=webhook_max_attempts,
            webhook_retry_backoff=webhook_retry_backoff,
        )
        """Workers, jobs, rooms and webhooks behind one lock; the methods below read and drive it."""

    def __repr__(self) -> str:
        where = self.ws_url if self.running else "not running"
        return f"LiveKitStandIn({where}, api_key={self.api_key!r})"

    @property
    def job_migration_grace(self) -> float:
        """How long a disconnected worker's running jobs wait for it (or another worker) to report them."""
        return self.backend.job_migration_grace

    @job_migration_grace.setter
    def job_migration_grace(self, seconds: float) -> None:
        self.backend.job_migration_grace = seconds

    @property
    def availability_timeout(self) -> float:
        """How long a worker has to answer a job offer before it counts as a decline."""
        return self.backend.availability_timeout

    @availability_timeout.setter
    def availability_timeout(self, seconds: float) -> None:
        self.backend.availability_timeout = seconds

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
        return build_app(self.backend)

    async def on_started(self) -> None:
        await self.backend.start()

    async def on_stopping(self) -> None:
        await self.backend.stop()

    # -- inspection ----------------------------------------------------------------------------------------

    @property
    def connections(self) -> list[ConnectionAttempt]:
        return self.backend.connections

    @property
    def workers(self) -> list[Worker]:
        return self.backend.workers

    @property
    def jobs(self) -> list[Job]:
        return self.backend.jobs

    @property
    def rooms(self) -> list[Room]:
        return self.backend.rooms

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self.backend.webhook_deliveries

    def job(self, job_id: str) -> Job:
        return self.backend.job(job_id)

    def room(self, name: str) -> Room:
        """The latest room with that name (open, or the last one closed)."""
        return self.backend.room(name)

    def state(self) -> dict[str, Any]:
        """Everything above as JSON-ready data (what ``GET /_standin/state`` answers)."""
        return self.backend.state()

    # -- waiting -------------------------------------------------------------------------------------------

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
                raise TimeoutError(f"{what} did not happen within {timeout}s; {self.backend.summary()}")
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
                raise TimeoutError(f"{what} did not happen within {timeout}s; {self.backend.summary()}")
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

        Callable from any thread but the stand-in's own loop (admin routes use ``backend.join_room`` there).
        """
        return self.call(lambda: self.backend.join_room(participant_token))

    def leave(self, room: str, identity: str) -> None:
        async def _leave() -> None:
            self.backend.leave_room(room, identity)

        self.call(_leave)

    def terminate_job(self, job_id: str) -> None:
        """Send ``JobTermination`` to the worker running the job (its process closes, the job ends)."""
        self.call(lambda: self.backend.terminate(job_id))

    def drop_workers(self) -> int:
        """Cut every worker connection at the TCP level, like a crash or network drop; returns the count."""

        async def _drop() -> int:
            return self.backend.drop_workers()

        return self.call(_drop)
