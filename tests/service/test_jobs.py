"""Session lifecycle merges (``agent_jobs``): PostgreSQL merges in SQL, one statement a batch, and must
give exactly what ``JobFacts.merge``/``JobFacts.status`` give, for any batching, order, duplicate or race."""

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

from lkps import db
from lkps.jobs import FAILURE_REASONS, JobFacts, combine, merge_into_db
from lkps.models import agent_jobs, string_lengths
from lkps.webhooks import StoredEvent, WebhookWriter

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
T0 = dt.datetime(2026, 11, 22, 11, 0, tzinfo=dt.timezone.utc)
FIRST_KNOWN = ("room_sid", "agent_entra_app_id", "client_id", "participant_identity", "participant_cwid")
TIMES = ("requested_at", "room_created_at", "participant_joined_at", "agent_joined_at", "finished_at")
LEAVES = (("participant_left_at", "disconnect_reason"), ("agent_left_at", "agent_disconnect_reason"))
# Failure and normal reasons, and none: every branch of the status.
REASONS = (None, "CLIENT_INITIATED", "ROOM_DELETED", *sorted(FAILURE_REASONS)[:3])


# A few instants (microseconds included: durations must come out as the same floats), so that ties occur.
INSTANTS = [T0 + dt.timedelta(seconds=s, microseconds=us) for s in range(3) for us in (0, 333_333)]


def random_facts(rng: random.Random, rooms: Sequence[str]) -> JobFacts:
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
    return JobFacts(**values)


def folded(batches: Sequence[Sequence[JobFacts]]) -> dict[str, dict[str, Any]]:
    """The rows the Python merge gives: each batch combined, then merged into what was stored before."""
    stored: dict[str, JobFacts] = {}
    for batch in batches:
        for room, facts in combine(batch).items():
            stored[room] = stored[room].merge(facts) if room in stored else facts
    return {room: without_update_time(facts.row(NOW)) for room, facts in stored.items()}


def without_update_time(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "updated_at"}


async def stored_rows(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(agent_jobs))
        rows = [dict(row) for row in result.mappings()]
    return {row["room_name"]: without_update_time(row) for row in rows}


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return db_url
    url = f"sqlite+aiosqlite:///{tmp_path / 'lkps.db'}"
    db.upgrade(url)
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


async def test_any_batching_of_random_facts_gives_the_python_merge(engine: AsyncEngine) -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible cases, not secrets
    batches: list[list[JobFacts]] = []
    for case in range(40):
        rooms = [f"case{case}-room{i}" for i in range(3)]
        facts = [random_facts(rng, rooms) for _ in range(rng.randrange(1, 30))]
        while facts:
            size = rng.randrange(1, 12)
            batches.append(facts[:size])
            facts = facts[size:]
    for batch in batches:
        async with engine.begin() as conn:
            await merge_into_db(conn, batch, NOW)
    expected = folded(batches)
    assert {row["status"] for row in expected.values()} >= {"failed", "completed", "agent_never_joined"}
    assert await stored_rows(engine) == expected


def stored_event(event_id: str, facts: JobFacts | None) -> StoredEvent:
    return StoredEvent(event_id, "participant_joined", facts and facts.room_name, T0, "{}", facts)


async def test_webhook_batches_merge_only_events_not_stored_before(engine: AsyncEngine) -> None:
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
    writer = WebhookWriter(engine, batch_size=8)
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


async def test_replicas_merging_the_same_rooms_at_once_lose_nothing(db_url: str) -> None:
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
        facts.append(JobFacts(**value))
    events = [stored_event(f"EV_race_{i}", item) for i, item in enumerate(facts)]
    engines = [db.create_engine(db_url), db.create_engine(db_url)]
    writers = [WebhookWriter(engine, batch_size=16) for engine in engines]
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


async def test_over_long_strings_are_cut_to_their_column_and_fail_no_batch(engine: AsyncEngine) -> None:
    limits = dict(string_lengths(agent_jobs))
    long = JobFacts(
        room_name="long-room",
        participant_identity="p" * (limits["participant_identity"] + 9),
        agent_identity="a" * (limits["agent_identity"] + 9),
        disconnect_reason="r" * (limits["disconnect_reason"] + 9),
        participant_left_at=T0,
    )
    async with engine.begin() as conn:
        await merge_into_db(conn, [long, JobFacts(room_name="other-room", room_created_at=T0)], NOW)
    rows = await stored_rows(engine)
    assert sorted(rows) == ["long-room", "other-room"]
    stored = rows["long-room"]
    for name in ("participant_identity", "agent_identity", "disconnect_reason"):
        assert stored[name] == getattr(long, name)[: limits[name]]
