"""Batched PostgreSQL inserts (``lkps.bulk``): COPY through a per-session staging table."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from service_helpers import fetch_rows
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import create_async_engine

from lkps.audit import REGISTRATION_COLUMNS, AuditWriter, Registration
from lkps.bulk import insert_rows
from lkps.models import agent_registrations, string_lengths

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


def registration(email: str = "a@example.com") -> tuple[object, ...]:
    agent = str(uuid.uuid4())
    row_id = str(uuid.uuid4())
    return (row_id, agent, f"agent-{agent}-{row_id}", None, agent, email, "gateway", True, NOW, NOW, False)


async def test_rows_land_once_conflicts_are_skipped_and_long_strings_cut(db_url: str) -> None:
    limit = dict(string_lengths(agent_registrations))["requester_email"]
    first = [registration(), registration("x" * (limit + 50))]
    second = [first[0], registration()]  # a repeated id (ON CONFLICT DO NOTHING) and a new row
    engine = create_async_engine(db_url, pool_size=1, max_overflow=0)  # both batches in one session
    try:
        for rows in (first, second):
            async with engine.begin() as conn:
                await insert_rows(
                    conn, agent_registrations, REGISTRATION_COLUMNS, rows, "ON CONFLICT (id) DO NOTHING"
                )
    finally:
        await engine.dispose()
    stored = await fetch_rows(db_url, "SELECT id, requester_email, issued_at FROM agent_registrations")
    assert sorted(r["id"] for r in stored) == sorted(str(r[0]) for r in [*first, second[1]])
    assert sorted(len(r["requester_email"]) for r in stored) == [13, 13, limit]
    assert {r["issued_at"] for r in stored} == {NOW}


async def test_a_staging_table_lost_to_a_rollback_is_created_again_on_the_retry(db_url: str) -> None:
    # One pooled connection, so the retry runs in the same database session as the rolled-back attempt.
    engine = create_async_engine(db_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await insert_rows(conn, agent_registrations, REGISTRATION_COLUMNS, [registration()])
            await conn.rollback()  # the CREATE TEMPORARY TABLE rolls back with the rows
        kept = registration()
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # a transaction already under way (as in the webhook writer)
            with pytest.raises(Exception, match="lkps_staging_agent_registrations"):
                await insert_rows(conn, agent_registrations, REGISTRATION_COLUMNS, [kept])
            await conn.rollback()
        async with engine.begin() as conn:  # what the writers' retry does
            await conn.execute(text("SELECT 1"))
            await insert_rows(conn, agent_registrations, REGISTRATION_COLUMNS, [kept])
    finally:
        await engine.dispose()
    stored = await fetch_rows(db_url, "SELECT id FROM agent_registrations")
    assert [r["id"] for r in stored] == [kept[0]]


async def test_a_value_postgresql_refuses_raises_sqlalchemy_data_error(db_url: str) -> None:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DataError):  # text cannot hold NUL: what the audit writer sets aside
                await insert_rows(
                    conn, agent_registrations, REGISTRATION_COLUMNS, [registration("nul\x00@example.com")]
                )
    finally:
        await engine.dispose()


async def test_the_audit_writer_drops_only_the_refused_record(db_url: str) -> None:
    engine = create_async_engine(db_url)
    writer = AuditWriter(engine, queue_size=100, batch_size=100, flush_timeout=10)
    records = [
        Registration(*row[:-1], registered_at=NOW)  # type: ignore[arg-type]
        for row in (registration(), registration("nul\x00@example.com"), registration())
    ]
    writer.start()
    try:
        for record in records:
            assert writer.submit(record)
        await writer.flush()
    finally:
        await writer.stop()
        await engine.dispose()
    stored = await fetch_rows(db_url, "SELECT id FROM agent_registrations")
    assert sorted(r["id"] for r in stored) == sorted([records[0].id, records[2].id])
    assert writer.dropped == 1
