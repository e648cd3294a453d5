"""Speedup ``bulk``: on PostgreSQL, each batch the service writes is one statement with the batch as one JSON
parameter (:mod:`lkps.speedups.array_rows`), instead of :class:`lkps.storage.writes.SqlWrites`' SQLAlchemy
statements; tests/service/speedups/test_bulk.py holds the two to the same rows for any batching.

Webhook batches go further: one statement stores the events and merges their facts, it is its own
transaction (no ``BEGIN``/``COMMIT`` round trips), and the writer keeps its connection between batches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..domain.audit import Registration
from ..domain.events import StoredEvent
from ..domain.sessions import SessionFacts
from ..storage.schema import agent_registrations, webhook_events
from ..storage.writes import SqlWrites
from .array_rows import array_rows
from .session_merge_sql import fact_rows, merge_facts_sql

# The audit row's columns but ``revoked``: Registration's first fields, in its order.
_AUDITED = Registration._fields[:-1]
# One statement writes a whole batch ($1: the registrations, one JSON array of arrays). It does what
# SqlWrites.registrations does: the audit rows, then each agent upserted from its latest registration in the
# batch (the later one on a tie), counting them all.
_REGISTER = (
    # Registration's fields: the audit row's columns (strings cut to fit), then when it was registered.
    f"WITH batch AS ({array_rows(1, agent_registrations, _AUDITED, [('registered_at', 'timestamptz')])}),"  # noqa: S608
    f" audited AS (INSERT INTO agent_registrations ({', '.join(_AUDITED)}, revoked)"
    f" SELECT {', '.join(_AUDITED)}, false FROM batch"
    " ON CONFLICT (id) DO NOTHING)"
    " INSERT INTO agents (entra_app_id, enforce_client_authz, first_registered_at, last_registered_at,"
    " last_worker_identity, registration_count, token_expires_at, revoked_at)"
    # agents' entra_app_id and last_worker_identity are as long as the audit row's columns they come from
    " SELECT entra_app_id, enforce_client_authz, registered_at, registered_at,"
    " worker_identity, registrations, expires_at, NULL"
    " FROM (SELECT DISTINCT ON (entra_app_id) *, count(*) OVER (PARTITION BY entra_app_id) AS registrations"
    " FROM batch ORDER BY entra_app_id, registered_at DESC, ord DESC) AS latest"
    " ORDER BY entra_app_id"
    " ON CONFLICT (entra_app_id) DO UPDATE SET"
    " enforce_client_authz = excluded.enforce_client_authz,"
    " last_registered_at = excluded.last_registered_at,"
    " last_worker_identity = excluded.last_worker_identity,"
    " registration_count = agents.registration_count + excluded.registration_count,"
    " token_expires_at = excluded.token_expires_at,"
    " revoked_at = CASE WHEN agents.revoked_at >= excluded.last_registered_at THEN agents.revoked_at END"
    " WHERE agents.last_registered_at <= excluded.last_registered_at"
)
_MERGE = merge_facts_sql(1)
_EVENT_COLUMNS = StoredEvent._fields[:5]  # the rest (facts) goes to sessions
# One statement stores the new events and merges their facts (only theirs: a repeated id, even with other
# content, changes nothing) into sessions: $1 the events, $2 the receive time, then the facts ($3, $4).
_STORE = (
    "WITH fresh AS (INSERT INTO webhook_events"  # noqa: S608 - names only, values are $n
    " (id, event, room_name, created_at, received_at, payload)"
    " SELECT id, event, room_name, created_at, $2, payload"
    f" FROM ({array_rows(1, webhook_events, _EVENT_COLUMNS)}) AS e"
    " ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id),"
    f" merged AS ({merge_facts_sql(3, fresh='fresh')})"
    " SELECT id FROM fresh"
)


class BulkWrites(SqlWrites):
    """PostgreSQL's writes as one statement a batch (revocations, rare, stay SQLAlchemy's)."""

    def __init__(self) -> None:
        super().__init__("postgresql")

    async def registrations(self, conn: AsyncConnection, registrations: Sequence[Registration]) -> None:
        if registrations:
            # orjson writes the whole batch in one C call (each Registration an array, times in RFC 3339).
            rows = orjson.dumps(registrations, default=tuple).decode()
            await conn.exec_driver_sql(_REGISTER, (rows,))

    async def sessions(self, conn: AsyncConnection, facts: Sequence[SessionFacts], now: dt.datetime) -> None:
        if facts:
            await conn.exec_driver_sql(_MERGE, (fact_rows(facts), now))

    async def events(self, conn: AsyncConnection, items: Sequence[StoredEvent], now: dt.datetime) -> set[str]:
        events = orjson.dumps([item[:5] for item in items]).decode()
        tracked = [(item.facts, item.id) for item in items if item.facts is not None]
        facts = fact_rows([facts for facts, _ in tracked], [event_id for _, event_id in tracked])
        result = await conn.exec_driver_sql(_STORE, (events, now, facts, now))
        return {row[0] for row in result}


class HeldConnectionBatches:
    """Webhook batches (:class:`lkps.storage.webhook_writer.EventBatches`) as single autocommit statements
    on a connection kept between batches: each checkout from the pool would first ping the server (three
    round trips with SQLAlchemy's asyncpg dialect)."""

    def __init__(self, engine: AsyncEngine, writes: BulkWrites) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._writes = writes
        self._held: AsyncConnection | None = None

    async def store(self, items: Sequence[StoredEvent], now: dt.datetime) -> set[str]:
        # After a failure the connection goes back to the pool (dropped if broken); if it was one kept from
        # before and found dead (the database restarted meanwhile), the batch runs once more on a fresh
        # checkout, which the pool pings.
        while True:
            kept, self._held = self._held, None
            conn = kept or await self._engine.connect()
            try:
                inserted = await self._writes.events(conn, items, now)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await conn.close()
                if kept is not None and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    continue  # events a lost commit stored count as duplicates on the retry: nothing lost
                raise
            self._held = conn
            return inserted

    async def close(self) -> None:
        if self._held is not None:
            await self._held.close()
            self._held = None
