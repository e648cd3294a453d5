"""The LiveKit stand-in's workers: registrations, their sockets, and what happens to their jobs when they go.

The first layer of the backend (``models.LiveKitBackend`` owns and initialises the state declared here).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from aiohttp import web
from google.protobuf.json_format import MessageToDict
from livekit.protocol import agent

from .records import ConnectionAttempt, Job, Worker, new_id, utcnow

logger = logging.getLogger(__name__)


class WorkerRegistry:
    """Worker registrations and their websockets; every change happens under the state lock ``_state``."""

    _state: threading.RLock
    _connections: list[ConnectionAttempt]
    _workers: dict[str, Worker]
    _jobs: dict[str, Job]
    _sockets: dict[str, web.WebSocketResponse]
    _transports: dict[str, asyncio.Transport | None]
    # monotonic deadlines, checked by the reaper task so they survive restart()
    _offer_deadline: dict[str, float]
    _assigned: set[str]
    _lost_since: dict[str, float]

    def record_connection(self, attempt: ConnectionAttempt) -> None:
        with self._state:
            self._connections.append(attempt)

    def register_worker(self, attempt: ConnectionAttempt, req: agent.RegisterWorkerRequest) -> Worker:
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

    def attach_socket(
        self, worker_id: str, ws: web.WebSocketResponse, transport: asyncio.Transport | None
    ) -> None:
        self._sockets[worker_id] = ws
        self._transports[worker_id] = transport

    def worker_gone(self, worker_id: str) -> None:
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

    def drop_workers(self) -> int:
        """Cut every worker connection at the TCP level, like a crash or network drop; returns the count."""
        dropped = 0
        for worker_id, transport in list(self._transports.items()):
            if transport is not None:
                transport.abort()
                dropped += 1
            self.worker_gone(worker_id)
        return dropped

    async def close_workers(self) -> None:
        """Close every worker websocket as a restarting server does (code 1012)."""
        sockets = list(self._sockets.items())
        for worker_id, ws in sockets:
            self.worker_gone(worker_id)
            await ws.close(code=1012, message=b"server restarting")

    async def send(self, worker_id: str, message: agent.ServerMessage) -> bool:
        ws = self._sockets.get(worker_id)
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_bytes(message.SerializeToString())
        except (ConnectionError, RuntimeError):
            return False
        return True

    def on_migrate(self, worker_id: str, job_ids: list[str]) -> None:
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
