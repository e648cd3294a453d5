"""LiveKit webhooks: verified (:mod:`lkps.webhook_auth`), turned into lifecycle facts, committed in batches.

A delivery is acknowledged only after its batch commits (so LiveKit retries anything not stored), and every
event id is stored once (so retries and duplicates change nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .bulk import array_rows
from .errors import ApiError
from .event_json import Field
from .jobs import JobFacts, fact_rows, merge_facts_sql, merge_into_db
from .models import fit, string_lengths, webhook_events
from .webhook_auth import Delivery

log = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset({"room_started", "participant_joined", "participant_left", "room_finished"})
_CLIENT_KINDS = frozenset({ParticipantInfo.Kind.STANDARD, ParticipantInfo.Kind.SIP})
_AGENT_ID_LENGTH = 36
_MAX_ROOM_NAME = 256  # agent_jobs.room_name; the service's own room names are far shorter
_MAX_EVENT_ID = dict(string_lengths(webhook_events))["id"]


class StoredEvent(NamedTuple):
    id: str
    event: str
    room_name: str | None
    created_at: dt.datetime | None
    payload: str
    facts: JobFacts | None


def _ts(seconds: int, millis: int = 0) -> dt.datetime | None:
    """A time from an event's seconds or (finer) milliseconds; ``None`` if unset or past datetime's range."""
    try:
        if millis:
            return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)
        if seconds:
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        pass
    return None


def _text(value: str) -> str:
    """A string from an event as PostgreSQL can store it: text cannot hold NUL, and one refused value would
    fail every event batched with it."""
    return value.replace("\x00", "") if "\x00" in value else value


def agent_app_id_from_room(room_name: str) -> str | None:
    """Room names are ``{cwid}-{agent app id}-{unix ts}-{4 hex}``: the GUID sits before the last two parts."""
    head, _, _ = room_name.rpartition("-")
    head, _, _ = head.rpartition("-")
    candidate = head[-_AGENT_ID_LENGTH:]
    if len(candidate) == _AGENT_ID_LENGTH and candidate.count("-") == 4:
        return candidate.lower()
    return None


# The WebhookEvent fields the service reads, as protobuf's JSON mapping names them.
_EVENT_NAME, _ID = Field(WebhookEvent, "event"), Field(WebhookEvent, "id")
_CREATED_AT = Field(WebhookEvent, "created_at")
_ROOM, _PARTICIPANT = Field(WebhookEvent, "room"), Field(WebhookEvent, "participant")
_ROOM_NAME, _ROOM_SID = Field(Room, "name"), Field(Room, "sid")
_CREATION_TIME, _CREATION_TIME_MS = Field(Room, "creation_time"), Field(Room, "creation_time_ms")
_IDENTITY, _KIND = Field(ParticipantInfo, "identity"), Field(ParticipantInfo, "kind")
_JOINED_AT, _JOINED_AT_MS = Field(ParticipantInfo, "joined_at"), Field(ParticipantInfo, "joined_at_ms")
_DISCONNECT_REASON = Field(ParticipantInfo, "disconnect_reason")
_REASONS = {value.number: value.name for value in DisconnectReason.DESCRIPTOR.values}


def _facts(
    kind: str, event: Mapping[str, Any], room: Mapping[str, Any], room_name: str, at: dt.datetime | None
) -> JobFacts:
    """The lifecycle facts of a tracked event (``kind`` in :data:`HANDLED_EVENTS`) about ``room_name``."""
    room_sid = _text(_ROOM_SID.string(room)) or None
    agent_id = agent_app_id_from_room(room_name)
    if kind == "room_started":
        created = _ts(_CREATION_TIME.int64(room), _CREATION_TIME_MS.int64(room)) or at
        return JobFacts(room_name, room_sid, agent_id, room_created_at=created)
    if kind == "room_finished":
        return JobFacts(room_name, room_sid, agent_id, finished_at=at)
    participant = _PARTICIPANT.message(event)
    identity = _text(_IDENTITY.string(participant)) or None
    participant_kind = _KIND.enum(participant)
    is_agent = participant_kind == ParticipantInfo.Kind.AGENT
    if not is_agent and participant_kind not in _CLIENT_KINDS:
        # Egress/ingress participants are not part of the session's lifecycle.
        return JobFacts(room_name, room_sid, agent_id)
    if kind == "participant_joined":
        joined = _ts(_JOINED_AT.int64(participant), _JOINED_AT_MS.int64(participant)) or at
        if is_agent:
            return JobFacts(room_name, room_sid, agent_id, agent_joined_at=joined, agent_identity=identity)
        return JobFacts(
            room_name, room_sid, agent_id, participant_joined_at=joined, participant_identity=identity
        )
    number = _DISCONNECT_REASON.enum(participant)
    reason = _REASONS.get(number, str(number))
    if is_agent:
        return JobFacts(
            room_name,
            room_sid,
            agent_id,
            agent_left_at=at,
            agent_disconnect_reason=reason,
            agent_identity=identity,
        )
    return JobFacts(
        room_name,
        room_sid,
        agent_id,
        participant_left_at=at,
        disconnect_reason=reason,
        participant_identity=identity,
    )


def stored_event(delivery: Delivery) -> StoredEvent:
    """What is stored of a delivery (the event in protobuf's JSON mapping, and its body), with its lifecycle
    facts if the service tracks the event; :class:`NotCanonicalError` if a field the service reads is in a
    form only protobuf's parser can settle."""
    event, payload = delivery
    kind = _EVENT_NAME.string(event)
    room = _ROOM.message(event)
    name = _ROOM_NAME.string(room)
    room_name = _text(name)
    at = _ts(_CREATED_AT.int64(event))
    # LiveKit always sets an id; a body hash keeps idempotency for any sender that does not.
    # Cut as the column would be, so the id compared for duplicates is the one stored.
    event_id = _ID.string(event) or "sha256:" + hashlib.sha256(payload.encode()).hexdigest()
    tracked = kind in HANDLED_EVENTS and name and len(name) <= _MAX_ROOM_NAME
    return StoredEvent(
        _text(event_id)[:_MAX_EVENT_ID],
        kind,
        room_name or None,
        at,
        payload,
        _facts(kind, event, room, room_name, at) if tracked else None,
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
        # PostgreSQL: a batch is one statement (its own transaction), so no BEGIN/COMMIT round trips.
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        )
        self._held: AsyncConnection | None = None
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
        if self._held is not None:
            await self._held.close()
            self._held = None
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
        distinct = list(first.values())
        if self._autocommit is not None:
            inserted = await self._store_postgresql(self._autocommit, distinct, now)
            fresh = [item for item in distinct if item.id in inserted]
        else:
            async with self._engine.begin() as conn:
                inserted = await _insert_new(conn, distinct, now)
                fresh = [item for item in distinct if item.id in inserted]
                await merge_into_db(conn, [i.facts for i in fresh if i.facts is not None], now)
        outcomes = [item.id in inserted and first[item.id] is item for item in items]
        self.batches += 1
        self.stored += len(fresh)
        self.duplicates += len(items) - len(fresh)
        return outcomes

    async def _store_postgresql(
        self, engine: AsyncEngine, items: list[StoredEvent], now: dt.datetime
    ) -> set[str]:
        # The writer keeps its connection between batches: each checkout from the pool would first ping the
        # server (three round trips with SQLAlchemy's asyncpg dialect). After a failure the connection goes
        # back to the pool (dropped if broken); if it was one kept from before and found dead (the database
        # restarted meanwhile), the batch runs once more on a fresh checkout, which the pool pings.
        while True:
            kept, self._held = self._held, None
            conn = kept or await engine.connect()
            try:
                inserted = await _store_postgresql(conn, items, now)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await conn.close()
                if kept is not None and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    continue  # events a lost commit stored count as duplicates on the retry: nothing lost
                raise
            self._held = conn
            return inserted


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


_EVENT_COLUMNS = StoredEvent._fields[:5]  # the rest (facts) goes to agent_jobs
# One statement stores the new events and merges their facts (only theirs: a repeated id, even with other
# content, changes nothing) into agent_jobs: $1 the events, $2 the receive time, then the facts ($3, $4).
_STORE_POSTGRESQL = (
    "WITH fresh AS (INSERT INTO webhook_events"  # noqa: S608 - names only, values are $n
    " (id, event, room_name, created_at, received_at, payload)"
    " SELECT id, event, room_name, created_at, $2, payload"
    f" FROM ({array_rows(1, webhook_events, _EVENT_COLUMNS)}) AS e"
    " ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id),"
    f" jobs AS ({merge_facts_sql(3, fresh='fresh')})"
    " SELECT id FROM fresh"
)


async def _store_postgresql(conn: AsyncConnection, items: list[StoredEvent], now: dt.datetime) -> set[str]:
    """Store the events (distinct ids) and merge the new ones' facts; the ids that were new."""
    events = orjson.dumps([item[:5] for item in items]).decode()
    tracked = [(item.facts, item.id) for item in items if item.facts is not None]
    facts = fact_rows([facts for facts, _ in tracked], [event_id for _, event_id in tracked])
    result = await conn.exec_driver_sql(_STORE_POSTGRESQL, (events, now, facts, now))
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
