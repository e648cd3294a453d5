"""Alembic migrations create exactly the schema the code uses, on PostgreSQL and SQLite, and go back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine
from support.postgres import PostgresCluster

from lkps import db
from lkps.models import metadata


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
