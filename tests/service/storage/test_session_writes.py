"""Session rows (``sessions``) hold exactly what ``SessionFacts.merge``/``SessionFacts.status`` give, for any
batching, order, duplicate or race, on every write path: SQLAlchemy's statements on PostgreSQL and SQLite (the
plain path), and speedup ``bulk``'s one statement a batch on PostgreSQL (the merge written in SQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from lkps.domain.events import StoredEvent
from lkps.domain.sessions import FAILURE_REASONS, SessionFacts, combine
from lkps.speedups.bulk import BulkWrites, HeldConnectionBatches
from lkps.storage import migrate
from lkps.storage.engine import create_engine
from lkps.storage.schema import sessions, string_lengths
from lkps.storage.webhook_writer import EventBatches, TransactionalBatches, WebhookWriter
from lkps.storage.writes import SqlWrites

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
T0 = dt.datetime(2026, 11, 22, 11, 0, tzinfo=dt.timezone.utc)
FIRST_KNOWN = ("room_sid", "agent_entra_app_id", "client_id", "participant_identity", "participant_cwid")
TIMES = ("requested_at", "room_created_at", "participant_joined_at", "agent_joined_at", "finished_at")
LEAVES = (("participant_left_at", "disconnect_reason"), ("agent_left_at", "agent_disconnect_reason"))
# Failure and normal reasons, and none: every branch of the status.
REASONS = (None, "CLIENT_INITIATED", "ROOM_DELETED", *sorted(FAILURE_REASONS)[:3])


# A few instants (microseconds included: durations must come out as the same floats), so that ties occur.
INSTANTS = [T0 + dt.timedelta(seconds=s, microseconds=us) for s in range(3) for us in (0, 333_333)]


def random_facts(rng: random.Random, rooms: Sequence[str]) -> SessionFacts:
    """Facts as sources give them: a few fields each, from small value sets so that ties and clashes occur."""
    values: dict[str, Any] = {"room_name": rng.choice(rooms)}
    for name in (*FIRST_KNOWN, "agent_identity"):
        if rng.random() < 0.25:
            values[name] = rng.choice(("a", "b", "c"))
    for name in TIMES:
        if rng.random() < 0.3:
            values[name] = rng.choice(INSTANTS)
    for left, reason in LEAVES:
        if rng.random() < 0.3:  # a leave always comes with its reason (possibly unknown)
            values[left] = rng.choice(INSTANTS)
            values[reason] = rng.choice(REASONS)
    return SessionFacts(**values)


def folded(batches: Sequence[Sequence[SessionFacts]]) -> dict[str, dict[str, Any]]:
    """The rows the Python merge gives: each batch combined, then merged into what was stored before."""
    stored: dict[str, SessionFacts] = {}
    for batch in batches:
        for room, facts in combine(batch).items():
            stored[room] = stored[room].merge(facts) if room in stored else facts
    return {room: without_update_time(facts.row(NOW)) for room, facts in stored.items()}


def without_update_time(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "updated_at"}


async def stored_rows(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(sessions))
        rows = [dict(row) for row in result.mappings()]
    return {row["room_name"]: without_update_time(row) for row in rows}


def writes_for(engine: AsyncEngine, path: str) -> SqlWrites:
    """``path``: ``plain`` (SQLAlchemy statements) or ``bulk`` (the speedup, PostgreSQL only)."""
    return BulkWrites() if path == "bulk" else SqlWrites(engine.dialect.name)


def batches_for(engine: AsyncEngine, writes: SqlWrites) -> EventBatches:
    if isinstance(writes, BulkWrites):
        return HeldConnectionBatches(engine, writes)
    return TransactionalBatches(engine, writes)


@pytest.fixture(params=["postgresql-plain", "postgresql-bulk", "sqlite-plain"])
def write_path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(write_path: str, db_url: str, tmp_path: Path) -> str:
    if write_path.startswith("postgresql"):
        return db_url
    url = f"sqlite+aiosqlite:///{tmp_path / 'lkps.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def writes(engine: AsyncEngine, write_path: str) -> SqlWrites:
    return writes_for(engine, write_path.rsplit("-", 1)[1])


async def test_any_batching_of_random_facts_gives_the_python_merge(
    engine: AsyncEngine, writes: SqlWrites
) -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible cases, not secrets
    batches: list[list[SessionFacts]] = []
    for case in range(40):
        rooms = [f"case{case}-room{i}" for i in range(3)]
        facts = [random_facts(rng, rooms) for _ in range(rng.randrange(1, 30))]
        while facts:
            size = rng.randrange(1, 12)
            batches.append(facts[:size])
            facts = facts[size:]
    for batch in batches:
        async with engine.begin() as conn:
            await writes.sessions(conn, batch, NOW)
    expected = folded(batches)
    assert {row["status"] for row in expected.values()} >= {"failed", "completed", "agent_never_joined"}
    assert await stored_rows(engine) == expected


def stored_event(event_id: str, facts: SessionFacts | None) -> StoredEvent:
    return StoredEvent(event_id, "participant_joined", facts and facts.room_name, T0, "{}", facts)


async def test_webhook_batches_merge_only_events_not_stored_before(
    engine: AsyncEngine, writes: SqlWrites
) -> None:
    rng = random.Random(11)  # noqa: S311 - reproducible cases, not secrets
    rooms = [f"hooks-room{i}" for i in range(4)]
    events = [stored_event(f"EV_{i}", random_facts(rng, rooms)) for i in range(120)]
    events.append(stored_event("EV_untracked", None))
    # Repeats of earlier ids with other content (forged or not): they must change nothing.
    deliveries = [*events]
    for _ in range(60):
        original = rng.choice(events)
        deliveries.insert(
            rng.randrange(len(deliveries) + 1), stored_event(original.id, random_facts(rng, rooms))
        )
    writer = WebhookWriter(batches_for(engine, writes), batch_size=8)
    writer.start()
    try:
        outcomes = []
        for start in range(0, len(deliveries), 20):  # rounds of concurrent deliveries
            outcomes += await asyncio.gather(
                *(writer.store(item, 10) for item in deliveries[start : start + 20])
            )
    finally:
        await writer.stop()
    first: dict[str, StoredEvent] = {}
    for item in deliveries:
        first.setdefault(item.id, item)
    assert outcomes == [first[item.id] is item for item in deliveries]
    # Any grouping into batches gives the same rows as one fact at a time, in delivery order.
    assert await stored_rows(engine) == folded([[i.facts] for i in first.values() if i.facts is not None])


@pytest.mark.parametrize("path", ["plain", "bulk"])
async def test_replicas_merging_the_same_rooms_at_once_lose_nothing(db_url: str, path: str) -> None:
    # Two replicas (each its own engine and writer), no lock between them: the same rooms, at the same time.
    # Each field has one possible value per room and leaves never tie, so every order has one right answer.
    rooms = [f"race-room{i}" for i in range(6)]
    facts = []
    for index in range(240):
        room = rooms[index % len(rooms)]
        field = (*FIRST_KNOWN, *TIMES, "participant_left_at", "agent_left_at")[index // len(rooms) % 12]
        at = T0 + dt.timedelta(seconds=index)
        value: dict[str, Any] = {"room_name": room}
        if field in FIRST_KNOWN:
            value[field] = f"{field}-of-{room}"
        elif field in TIMES:
            value[field] = at
        else:
            value[field] = at
            value[dict(LEAVES)[field]] = REASONS[index % len(REASONS)]
        facts.append(SessionFacts(**value))
    events = [stored_event(f"EV_race_{i}", item) for i, item in enumerate(facts)]
    engines = [create_engine(db_url), create_engine(db_url)]
    writers = [
        WebhookWriter(batches_for(engine, writes_for(engine, path)), batch_size=16) for engine in engines
    ]
    for writer in writers:
        writer.start()
    try:
        # Every event goes to both replicas (as a LiveKit retry might): each is stored by exactly one.
        results = await asyncio.gather(
            *(
                w.store(item, 30)
                for i, item in enumerate(events)
                for w in (writers if i % 2 else writers[::-1])
            )
        )
        merged = await stored_rows(engines[0])
    finally:
        for writer in writers:
            await writer.stop()
        for engine in engines:
            await engine.dispose()
    assert [a + b for a, b in zip(results[0::2], results[1::2], strict=True)] == [1] * len(events)
    assert merged == folded([facts])


async def test_over_long_strings_are_cut_to_their_column_and_fail_no_batch(
    engine: AsyncEngine, writes: SqlWrites
) -> None:
    limits = dict(string_lengths(sessions))
    long = SessionFacts(
        room_name="long-room",
        participant_identity="p" * (limits["participant_identity"] + 9),
        agent_identity="a" * (limits["agent_identity"] + 9),
        disconnect_reason="r" * (limits["disconnect_reason"] + 9),
        participant_left_at=T0,
    )
    async with engine.begin() as conn:
        await writes.sessions(conn, [long, SessionFacts(room_name="other-room", room_created_at=T0)], NOW)
    rows = await stored_rows(engine)
    assert sorted(rows) == ["long-room", "other-room"]
    stored = rows["long-room"]
    for name in ("participant_identity", "agent_identity", "disconnect_reason"):
        assert stored[name] == getattr(long, name)[: limits[name]]
