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
from sqlalchemy import Connection, insert, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine
from support.postgres import PostgresCluster

from lkps import db
from lkps.db import create_engine
from lkps.models import agent_registrations, agents, metadata
from lkps.registry import AgentRegistry


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
    await db.upgrade_async(empty_database)
    assert await tables(empty_database) == {
        "alembic_version",
        "agents",
        "agent_registrations",
        "agent_jobs",
        "webhook_events",
    }
    assert await schema_diff(empty_database) == []


async def test_upgrade_is_idempotent_and_downgrade_removes_everything(empty_database: str) -> None:
    await db.upgrade_async(empty_database)
    await db.upgrade_async(empty_database)
    await asyncio.to_thread(command.downgrade, db.alembic_config(empty_database), "base")
    assert await tables(empty_database) == {"alembic_version"}


async def test_the_blocking_upgrade_also_works_when_called_inside_an_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inside.db'}"
    db.upgrade(url)
    assert "agent_jobs" in await tables(url)


async def test_revision_0002_gives_existing_agents_the_expiry_of_their_newest_audited_token(
    empty_database: str,
) -> None:
    await asyncio.to_thread(command.upgrade, db.alembic_config(empty_database), "0001")
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
        await db.upgrade_async(empty_database)
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
    registry = AgentRegistry(registry_engine, time.monotonic, legacy_token_ttl=3600)
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
