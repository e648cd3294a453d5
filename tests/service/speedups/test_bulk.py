"""Speedup ``bulk``: batches on PostgreSQL as one statement with one JSON parameter (``array_rows``), and the
one-statement registration batch built on them, held to the plain path's SQLAlchemy statements for any
batching, order, tie, repeat or revocation. (Session merges on every write path: test_session_writes.py.)"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from lkps.domain.audit import Registration, Revocation
from lkps.speedups.array_rows import array_rows, typed_columns
from lkps.speedups.bulk import BulkWrites
from lkps.storage.audit_writer import AuditWriter
from lkps.storage.engine import create_engine, rows_refused
from lkps.storage.schema import agent_registrations, agents, string_lengths
from lkps.storage.writes import SqlWrites
from tests.support.postgres import PostgresCluster
from tests.support.service import emptied, fetch_rows, migrated_database

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
AGENTS = [str(uuid.UUID(int=i + 1)) for i in range(3)]
# A few instants (microseconds included), so that registrations of one agent tie.
INSTANTS = [NOW + dt.timedelta(seconds=s, microseconds=us) for s in range(3) for us in (0, 250_000)]


def registration(
    email: str | None = "a@example.com",
    *,
    agent: str | None = None,
    at: dt.datetime = NOW,
    worker_identity: str | None = None,
    enforce: bool = True,
) -> Registration:
    agent = agent or str(uuid.uuid4())
    row_id = str(uuid.uuid4())
    return Registration(
        id=row_id,
        entra_app_id=agent,
        worker_identity=worker_identity or f"agent-{agent}-{row_id}",
        requested_by=None,
        client_id=agent,
        requester_email=email,
        identity_mode="gateway",
        enforce_client_authz=enforce,
        issued_at=at.replace(microsecond=0),
        expires_at=at.replace(microsecond=0) + dt.timedelta(hours=1),
        registered_at=at,
    )


BULK, PLAIN = BulkWrites(), SqlWrites("postgresql")


@pytest.fixture(params=["bulk", "plain"])
def writes(request: pytest.FixtureRequest) -> SqlWrites:
    """Both write paths on PostgreSQL: each case below holds for both."""
    return BULK if request.param == "bulk" else PLAIN


async def write(engine: AsyncEngine, registrations: list[Registration], writes: SqlWrites = BULK) -> None:
    async with engine.begin() as conn:
        await writes.registrations(conn, registrations)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def reference_pg_url(postgres: PostgresCluster) -> str:
    return migrated_database(postgres, "lkps_reference")


@pytest.fixture
async def reference(reference_pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await emptied(reference_pg_url))
    yield engine
    await engine.dispose()


async def the_agent(db_url: str) -> tuple[bool, str, int]:
    """The one agent row's enforce_client_authz, last_worker_identity and registration_count."""
    columns = "enforce_client_authz, last_worker_identity, registration_count"
    rows = await fetch_rows(db_url, f"SELECT {columns} FROM agents")  # noqa: S608 - a constant
    assert len(rows) == 1
    return rows[0]["enforce_client_authz"], rows[0]["last_worker_identity"], rows[0]["registration_count"]


async def table_rows(engine: AsyncEngine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with engine.connect() as conn:
        audited = (await conn.execute(select(agent_registrations).order_by("id"))).mappings()
        audit_rows = [dict(row) for row in audited]
        agent_rows = [
            dict(row) for row in (await conn.execute(select(agents).order_by("entra_app_id"))).mappings()
        ]
    return audit_rows, agent_rows


async def test_array_rows_reads_back_every_value_in_batch_order_cut_to_fit(engine: AsyncEngine) -> None:
    limit = dict(string_lengths(agent_registrations))["requester_email"]
    columns = ("requester_email", "enforce_client_authz", "issued_at")
    rows = [
        ('quote " back\\slash ünï', True, NOW + dt.timedelta(microseconds=123_456), None),
        ("", False, NOW, '{"not": "parsed"}'),
        ("x" * (limit + 5), None, None, "y" * (limit + 5)),  # the column is cut, the extra value is not
    ]
    sql = array_rows(1, agent_registrations, columns, [("note", "text")])
    async with engine.connect() as conn:
        read = [tuple(row) for row in await conn.exec_driver_sql(sql, (orjson.dumps(rows).decode(),))]
    expected = [*rows[:2], ("x" * limit, None, None, "y" * (limit + 5))]
    assert read == [(*row, i) for i, row in enumerate(expected, start=1)]


def test_typed_columns_follow_the_table() -> None:
    assert typed_columns(agent_registrations, ["id", "enforce_client_authz", "issued_at"]) == [
        ("id", "text"),
        ("enforce_client_authz", "boolean"),
        ("issued_at", "timestamptz"),
    ]


async def test_rows_land_once_conflicts_are_skipped_and_long_strings_cut(
    engine: AsyncEngine, db_url: str, writes: SqlWrites
) -> None:
    limit = dict(string_lengths(agent_registrations))["requester_email"]
    first = [registration(), registration("x" * (limit + 50), worker_identity="w" * 300)]
    second = [first[0], registration()]  # a repeated id (ON CONFLICT DO NOTHING) and a new row
    for batch in (first, second):
        await write(engine, batch, writes)
    stored = await fetch_rows(
        db_url, "SELECT id, requester_email, worker_identity, issued_at FROM agent_registrations"
    )
    assert sorted(r["id"] for r in stored) == sorted(r.id for r in [*first, second[1]])
    assert sorted(len(r["requester_email"]) for r in stored) == [13, 13, limit]
    assert max(len(r["worker_identity"]) for r in stored) == 128
    assert {r["issued_at"] for r in stored} == {NOW}
    identities = await fetch_rows(db_url, "SELECT last_worker_identity FROM agents")
    assert sorted(len(r["last_worker_identity"]) for r in identities) == [
        79,
        79,
        128,
    ]  # "agent-{app id}-{row id}", and one cut


async def test_a_value_postgresql_refuses_is_told_apart_from_a_failure(
    engine: AsyncEngine, writes: SqlWrites
) -> None:
    with pytest.raises(DBAPIError) as refused:  # text cannot hold NUL: what the audit writer sets aside
        await write(engine, [registration("nul\x00@example.com")], writes)
    assert rows_refused(refused.value)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("SET LOCAL statement_timeout = 1")
        with pytest.raises(DBAPIError) as failed:  # a failure, not the rows': the writer keeps them, retries
            await conn.exec_driver_sql("SELECT pg_sleep(1)")
    assert failed.value.orig.sqlstate == "57014"  # type: ignore[union-attr]  # query_canceled
    assert not rows_refused(failed.value)


async def test_the_audit_writer_drops_only_the_refused_record(
    engine: AsyncEngine, db_url: str, writes: SqlWrites
) -> None:
    writer = AuditWriter(engine, writes, queue_size=100, batch_size=100, flush_timeout=10)
    records = [registration(), registration("nul\x00@example.com"), registration()]
    writer.start()
    try:
        for record in records:
            assert writer.submit(record)
        await writer.flush()
    finally:
        await writer.stop()
    stored = await fetch_rows(db_url, "SELECT id FROM agent_registrations")
    assert sorted(r["id"] for r in stored) == sorted([records[0].id, records[2].id])
    assert writer.dropped == 1


async def test_any_batching_gives_what_the_sqlalchemy_path_gives(
    engine: AsyncEngine, reference: AsyncEngine
) -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible cases, not secrets
    written: list[Registration] = []
    steps: list[list[Registration] | Revocation] = []
    for _ in range(60):
        if rng.random() < 0.15:
            steps.append(Revocation(rng.choice(AGENTS), rng.choice(INSTANTS)))
            continue
        batch = [
            registration(agent=rng.choice(AGENTS), at=rng.choice(INSTANTS), enforce=rng.random() < 0.5)
            for _ in range(rng.randrange(1, 12))
        ]
        if written and rng.random() < 0.3:  # a batch written again (its commit outcome was unknown)
            batch += rng.sample(written, min(3, len(written)))
        written += batch
        steps.append(batch)
    for step in steps:
        async with engine.begin() as conn, reference.begin() as ref:
            if isinstance(step, Revocation):
                await BULK.revocation(conn, step)
                await PLAIN.revocation(ref, step)
            else:
                await BULK.registrations(conn, step)
                await PLAIN.registrations(ref, step)
    audited, agent_rows = await table_rows(engine)
    assert (audited, agent_rows) == await table_rows(reference)
    # the cases mean something: every agent registered, some audit rows revoked and some not
    assert len(agent_rows) == len(AGENTS)
    assert any(r["revoked"] for r in audited)
    assert not all(r["revoked"] for r in audited)


async def test_an_older_registration_arriving_late_changes_no_agent_but_is_audited(
    engine: AsyncEngine, db_url: str, writes: SqlWrites
) -> None:
    newer = registration(agent=AGENTS[0], at=INSTANTS[3], enforce=False)
    older = registration(agent=AGENTS[0], at=INSTANTS[1], enforce=True)
    await write(engine, [newer], writes)
    await write(engine, [older], writes)
    assert await the_agent(db_url) == (False, newer.worker_identity, 1)
    assert len(await fetch_rows(db_url, "SELECT id FROM agent_registrations")) == 2


async def test_the_later_of_two_registrations_at_the_same_instant_wins(
    engine: AsyncEngine, db_url: str, writes: SqlWrites
) -> None:
    first = registration(agent=AGENTS[1], at=INSTANTS[2], enforce=True)
    second = registration(agent=AGENTS[1], at=INSTANTS[2], enforce=False)
    await write(engine, [first, second], writes)
    assert await the_agent(db_url) == (False, second.worker_identity, 2)
