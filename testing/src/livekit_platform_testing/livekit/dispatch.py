"""The LiveKit stand-in's job dispatch: offering a job to a worker, its answer, the job's status and its end.

The second layer of the backend (``models.LiveKitBackend`` owns and initialises the state declared here). A
job reaching ``JS_RUNNING`` counts as its agent participant joining the room, its end as the agent leaving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from livekit.protocol import agent, models

from .exceptions import RoomRequestError
from .records import Job, JobTransition, Participant, Worker, new_id, utcnow
from .rooms import RoomRegistry, room_proto
from .tokens import TokenAuthority, fingerprint
from .workers import WorkerRegistry

logger = logging.getLogger(__name__)

_ENDED = ("JS_SUCCESS", "JS_FAILED", "JS_CANCELLED")
_DECLINE_BACKOFF = 1.0  # a worker that declined a job (busy) is asked again after this long


class JobDispatch(WorkerRegistry):
    """Dispatch of room jobs to the workers registered under the job's ``agent_name``."""

    authority: TokenAuthority
    availability_timeout: float
    _rooms: RoomRegistry
    _declined: dict[tuple[str, str], float]
    _ws_url: Callable[[], str]

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

    async def dispatch(self, job_id: str) -> None:
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
        if not await self.send(worker.id, request):
            with self._state:
                job.worker_id = None
                self._offer_deadline.pop(job_id, None)

    async def dispatch_waiting(self, agent_name: str) -> None:
        with self._state:
            waiting = [
                j.id
                for j in self._jobs.values()
                if j.agent_name == agent_name and not j.ended and j.worker_id is None
            ]
        for job_id in waiting:
            await self.dispatch(job_id)

    async def on_availability(self, worker_id: str, resp: agent.AvailabilityResponse) -> None:
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
                token = self.authority.mint_agent_join(
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
                # No URL, as livekit-server sends it (pkg/agent/worker.go): the worker's own URL is used.
                assignment = agent.JobAssignment(job=self._job_proto(job), token=token)
        if resp.available:
            await self.send(worker_id, agent.ServerMessage(assignment=assignment))
        else:
            await self.dispatch(resp.job_id)

    def on_update_job(self, worker_id: str, update: agent.UpdateJobStatus) -> None:
        with self._state:
            job = self._jobs.get(update.job_id)
            # a reconnected worker flushes updates queued while it was away before it reports its jobs
            lost = job is not None and job.id in self._lost_since
            if lost and job is not None and self._workers[worker_id].agent_name == job.agent_name:
                self.on_migrate(worker_id, [job.id])
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

    async def terminate(self, job_id: str) -> None:
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
        if not await self.send(
            worker_id, agent.ServerMessage(termination=agent.JobTermination(job_id=job_id))
        ):
            raise RoomRequestError(409, f"job {job_id}: its worker {worker_id} is not connected, retry later")

    async def on_update_worker(self, worker_id: str, update: agent.UpdateWorkerStatus) -> None:
        with self._state:
            worker = self._workers[worker_id]
            became_available = update.status == agent.WS_AVAILABLE and worker.status != "WS_AVAILABLE"
            worker.status = agent.WorkerStatus.Name(update.status)
            worker.load = update.load
            worker.job_count = update.job_count
        if became_available:
            await self.dispatch_waiting(worker.agent_name)

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
