"""LiveKit webhooks: verified with livekit-api, turned into lifecycle facts, committed in batches.

A delivery is acknowledged only after its batch commits (so LiveKit retries anything not stored), and every
event id is stored once (so retries and duplicates change nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo
from livekit.protocol.webhook import WebhookEvent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .bulk import insert_rows
from .errors import ApiError
from .jobs import JobFacts, lock_lifecycle, merge_into_db
from .models import fit, webhook_events

log = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset({"room_started", "participant_joined", "participant_left", "room_finished"})
_CLIENT_KINDS = frozenset({ParticipantInfo.Kind.STANDARD, ParticipantInfo.Kind.SIP})
_AGENT_ID_LENGTH = 36
_MAX_ROOM_NAME = 256  # agent_jobs.room_name; the service's own room names are far shorter


class WebhookVerifier:
    """Checks the raw JWT in ``Authorization`` (signed with the API secret) and its ``sha256`` of the body."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self._receiver = api.WebhookReceiver(api.TokenVerifier(api_key, api_secret))

    def verify(self, body: bytes, authorization: str | None) -> WebhookEvent:
        if not authorization:
            raise ApiError(
                401, "unauthorized", "no Authorization header: LiveKit signs every webhook", "Authorization"
            )
        try:
            return self._receiver.receive(body.decode(), authorization)
        except Exception:  # livekit-api raises bare Exceptions for hash mismatches: any failure is a 401
            raise ApiError(
                401,
                "unauthorized",
                "the webhook signature or body hash does not verify: LIVEKIT_API_KEY/SECRET must match"
                " the LiveKit server's",
                "Authorization",
            ) from None


@dataclass(frozen=True)
class StoredEvent:
    id: str
    event: str
    room_name: str | None
    created_at: dt.datetime | None
    payload: str
    facts: JobFacts | None


def _ts(seconds: int, millis: int = 0) -> dt.datetime | None:
    if millis:
        return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)
    if seconds:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return None


def agent_app_id_from_room(room_name: str) -> str | None:
    """Room names are ``{cwid}-{agent app id}-{unix ts}-{4 hex}``: the GUID sits before the last two parts."""
    head, _, _ = room_name.rpartition("-")
    head, _, _ = head.rpartition("-")
    candidate = head[-_AGENT_ID_LENGTH:]
    if len(candidate) == _AGENT_ID_LENGTH and candidate.count("-") == 4:
        return candidate.lower()
    return None


def facts_for(event: WebhookEvent) -> JobFacts | None:
    """The lifecycle facts an event carries, or ``None`` for events the service does not track."""
    if event.event not in HANDLED_EVENTS or not event.room.name or len(event.room.name) > _MAX_ROOM_NAME:
        return None
    room = event.room
    at = _ts(event.created_at)
    base: dict[str, Any] = {
        "room_name": room.name,
        "room_sid": room.sid or None,
        "agent_entra_app_id": agent_app_id_from_room(room.name),
    }
    if event.event == "room_started":
        return JobFacts(**base, room_created_at=_ts(room.creation_time, room.creation_time_ms) or at)
    if event.event == "room_finished":
        return JobFacts(**base, finished_at=at)
    participant = event.participant
    is_agent = participant.kind == ParticipantInfo.Kind.AGENT
    if not is_agent and participant.kind not in _CLIENT_KINDS:
        return JobFacts(**base)  # egress/ingress participants are not part of the session's lifecycle
    if event.event == "participant_joined":
        joined = _ts(participant.joined_at, participant.joined_at_ms) or at
        if is_agent:
            return JobFacts(**base, agent_joined_at=joined, agent_identity=participant.identity or None)
        return JobFacts(
            **base, participant_joined_at=joined, participant_identity=participant.identity or None
        )
    reason = DisconnectReason.Name(participant.disconnect_reason)
    if is_agent:
        return JobFacts(
            **base,
            agent_left_at=at,
            agent_disconnect_reason=reason,
            agent_identity=participant.identity or None,
        )
    return JobFacts(
        **base,
        participant_left_at=at,
        disconnect_reason=reason,
        participant_identity=participant.identity or None,
    )


def stored_event(event: WebhookEvent, body: bytes) -> StoredEvent:
    # LiveKit always sets an id; a body hash keeps idempotency for any sender that does not.
    event_id = event.id or "sha256:" + hashlib.sha256(body).hexdigest()
    return StoredEvent(
        id=event_id,
        event=event.event,
        room_name=event.room.name or None,
        created_at=_ts(event.created_at),
        payload=body.decode(),
        facts=facts_for(event),
    )


class WebhookWriter:
    """Group commit: concurrent deliveries share one transaction; each waits for its own outcome."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int,
        queue_size: int = 20_000,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._queue: asyncio.Queue[tuple[StoredEvent, asyncio.Future[bool]]] = asyncio.Queue(queue_size)
        self._now = now
        self._task: asyncio.Task[None] | None = None
        self.stored = 0
        self.duplicates = 0
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lkps-webhook-writer")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(ApiError(503, "shutting_down", "the service is stopping; retry"))

    async def store(self, item: StoredEvent, timeout: float) -> bool:
        """Store ``item``: ``True`` if new, ``False`` if its id was stored before; 503 on failure."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise ApiError(503, "overloaded", "too many webhooks are waiting to be stored; retry") from None
        # A timer on the future itself: cheaper than wait_for(shield(...)) on every delivery. The writer skips
        # futures already settled (timed out, or cancelled with a disconnected request).
        timer = loop.call_later(timeout, _time_out, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self._write([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(ApiError(503, "shutting_down", "the service is stopping; retry"))
                raise
            except Exception as exc:  # database down or failing: every delivery in the batch gets a 503
                log.warning("webhook batch failed", extra={"events": len(batch), "error": type(exc).__name__})
                failure = ApiError(503, "database_unavailable", "the event could not be stored; retry")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                        future.exception()  # the waiter may have timed out already
                continue
            for (_, future), is_new in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(is_new)

    async def _write(self, items: list[StoredEvent]) -> list[bool]:
        now = self._now()
        first: dict[str, StoredEvent] = {}
        for item in items:
            first.setdefault(item.id, item)  # a duplicate within the same batch counts once
        async with self._engine.begin() as conn:
            await lock_lifecycle(conn)
            if conn.dialect.name == "postgresql":
                inserted = await _insert_new_postgresql(conn, list(first.values()), now)
            else:
                inserted = await _insert_new(conn, list(first.values()), now)
            fresh = [item for item in first.values() if item.id in inserted]
            # The lifecycle lock is already held by this transaction.
            await merge_into_db(conn, [i.facts for i in fresh if i.facts is not None], now, locked=True)
        outcomes = [item.id in inserted and first[item.id] is item for item in items]
        self.batches += 1
        self.stored += len(fresh)
        self.duplicates += len(items) - len(fresh)
        return outcomes


def _time_out(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_exception(
            ApiError(503, "database_unavailable", "the event could not be stored in time; retry")
        )


def _event_row(item: StoredEvent, now: dt.datetime) -> dict[str, Any]:
    return fit(
        webhook_events,
        {
            "id": item.id,
            "event": item.event,
            "room_name": item.room_name,
            "created_at": item.created_at,
            "received_at": now,
            "payload": item.payload,
        },
    )


_EVENT_COLUMNS = ("id", "event", "room_name", "created_at", "received_at", "payload")


async def _insert_new_postgresql(
    conn: AsyncConnection, items: list[StoredEvent], now: dt.datetime
) -> set[str]:
    """Insert the events (distinct ids) as one batch; the ids stored before are skipped, not returned."""
    result = await insert_rows(
        conn,
        webhook_events,
        _EVENT_COLUMNS,
        [(i.id, i.event, i.room_name, i.created_at, now, i.payload) for i in items],
        "ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    return {row[0] for row in result}


async def _insert_new(conn: AsyncConnection, items: list[StoredEvent], now: dt.datetime) -> set[str]:
    """Insert the events (distinct ids) whose ids were not stored before; the ids inserted."""
    ids = sorted(item.id for item in items)
    known: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        result = await conn.execute(select(webhook_events.c.id).where(webhook_events.c.id.in_(chunk)))
        known.update(result.scalars())
    fresh = [item for item in items if item.id not in known]
    if fresh:
        await conn.execute(webhook_events.insert(), [_event_row(item, now) for item in fresh])
    return {item.id for item in fresh}
