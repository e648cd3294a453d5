"""Alembic migrations create exactly the schema the code uses, on PostgreSQL and SQLite, and go back."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from lkps.domain.agents import AgentRegistry
from lkps.storage import migrate
from lkps.storage.agents import AgentStore
from lkps.storage.engine import create_engine
from lkps.storage.schema import agent_registrations, agents, metadata
from tests.support.postgres import PostgresCluster


async def schema_diff(url: str) -> list[object]:
    engine = create_async_engine(url)

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


async def tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, postgres: PostgresCluster, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return postgres.create_database(f"migrations_{tmp_path.name[-8:].lower().replace('-', '_')}")
    return f"sqlite+aiosqlite:///{tmp_path / 'lkps.db'}"


async def test_upgrade_to_head_matches_the_models(empty_database: str) -> None:
    await migrate.upgrade_async(empty_database)
    assert await tables(empty_database) == {
        "alembic_version",
        "agents",
        "agent_registrations",
        "sessions",
        "webhook_events",
        "worker_connections",
        "job_assignments",
    }
    assert await schema_diff(empty_database) == []


async def test_upgrade_is_idempotent_and_downgrade_removes_everything(empty_database: str) -> None:
    await migrate.upgrade_async(empty_database)
    await migrate.upgrade_async(empty_database)
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(empty_database), "base")
    assert await tables(empty_database) == {"alembic_version"}


async def test_the_blocking_upgrade_also_works_when_called_inside_an_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inside.db'}"
    migrate.upgrade(url)
    assert "sessions" in await tables(url)


async def test_revision_0002_gives_existing_agents_the_expiry_of_their_newest_audited_token(
    empty_database: str,
) -> None:
    await asyncio.to_thread(command.upgrade, migrate.alembic_config(empty_database), "0001")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    audited, unaudited = str(uuid.uuid4()), str(uuid.uuid4())
    engine = create_async_engine(empty_database)
    try:
        async with engine.begin() as conn:
            # Only the columns revision 0001 has.
            await conn.execute(
                insert(agents),
                [
                    _old_agent(audited, registered_at=now - dt.timedelta(hours=2)),
                    _old_agent(unaudited, registered_at=now - dt.timedelta(minutes=5)),
                ],
            )
            await conn.execute(
                insert(agent_registrations),
                [
                    _old_registration(audited, issued_at=now - dt.timedelta(hours=3)),
                    _old_registration(audited, issued_at=now - dt.timedelta(hours=2)),
                ],
            )
        await migrate.upgrade_async(empty_database)
        async with engine.connect() as conn:
            rows = {
                r.entra_app_id: r
                for r in await conn.execute(
                    select(agents.c.entra_app_id, agents.c.token_expires_at, agents.c.revoked_at)
                )
            }
    finally:
        await engine.dispose()
    assert rows[audited].token_expires_at == now - dt.timedelta(hours=1)
    assert rows[unaudited].token_expires_at is None
    assert rows[audited].revoked_at is None
    assert await schema_diff(empty_database) == []

    # The audited agent's token has expired; the other counts from its registration with today's TTL.
    registry_engine = create_engine(empty_database)
    registry = AgentRegistry(AgentStore(registry_engine, legacy_token_ttl=3600), time.monotonic)
    try:
        expired = await registry.lookup(audited, now)
        active = await registry.lookup(unaudited, now)
    finally:
        await registry_engine.dispose()
    assert expired is not None
    assert not expired.active(now)
    assert active is not None
    assert active.expires_at == now + dt.timedelta(minutes=55)
    assert active.active(now)


def _old_agent(agent_id: str, *, registered_at: dt.datetime) -> dict[str, object]:
    return {
        "entra_app_id": agent_id,
        "enforce_client_authz": False,
        "first_registered_at": registered_at,
        "last_registered_at": registered_at,
        "last_worker_identity": f"agent-{agent_id}-old",
    }


def _old_registration(agent_id: str, *, issued_at: dt.datetime) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "entra_app_id": agent_id,
        "worker_identity": f"agent-{agent_id}-{issued_at.timestamp():.0f}",
        "identity_mode": "entra",
        "enforce_client_authz": False,
        "issued_at": issued_at,
        "expires_at": issued_at + dt.timedelta(hours=1),
    }


async def named(url: str, table: str) -> set[str]:
    """The names of ``table``'s indexes and primary key constraint."""
    engine = create_async_engine(url)

    def names(conn: Connection) -> set[str]:
        inspector = inspect(conn)
        return {str(i["name"]) for i in inspector.get_indexes(table)} | {
            str(inspector.get_pk_constraint(table)["name"])
        }

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(names)
    finally:
        await engine.dispose()


async def test_revision_0003_renames_agent_jobs_to_sessions_keeping_its_rows_and_goes_back(
    empty_database: str,
) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_database, "0002")
    engine = create_async_engine(empty_database)
    row = {"room_name": "JDOE1-room", "status": "completed", "client_id": "c1", "session_duration_s": 90.0}
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO agent_jobs (room_name, status, client_id, session_duration_s, updated_at)"
                    " VALUES (:room_name, :status, :client_id, :session_duration_s, CURRENT_TIMESTAMP)"
                ),
                row,
            )
        await migrate.upgrade_async(empty_database)
        assert "agent_jobs" not in await tables(empty_database)
        assert await named(empty_database, "sessions") == {
            "ix_sessions_agent_entra_app_id",
            "ix_sessions_status",
            "pk_sessions",
        }
        assert await schema_diff(empty_database) == []
        async with engine.connect() as conn:
            columns = "room_name, status, client_id, session_duration_s"
            kept = (await conn.execute(text(f"SELECT {columns} FROM sessions"))).mappings().all()  # noqa: S608
        assert [dict(r) for r in kept] == [row]

        await asyncio.to_thread(migrate.downgrade, empty_database, "0002")
        assert "sessions" not in await tables(empty_database)
        assert await named(empty_database, "agent_jobs") == {
            "ix_agent_jobs_agent_entra_app_id",
            "ix_agent_jobs_status",
            "pk_agent_jobs",
        }
        async with engine.connect() as conn:
            back = (await conn.execute(text("SELECT room_name FROM agent_jobs"))).scalars().all()
        assert back == ["JDOE1-room"]
    finally:
        await engine.dispose()
