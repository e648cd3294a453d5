"""The service's writes as SQLAlchemy statements, each inside the caller's transaction: audit rows and
agents, revocations, session merges, webhook events.

One class serves PostgreSQL and SQLite: the only difference, the dialect's ``INSERT ... ON CONFLICT``
construct, is chosen once, when the app is built. Concurrent writers (replicas) need no lock between them:
rows are inserted and locked in key order, a new session is inserted whole, and a stored one is merged
under its row lock (``SELECT ... FOR UPDATE``; SQLite has one writer at a time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.audit import JobAssigned, Registration, RelayRecord, Revocation, WorkerClosed, WorkerConnection
from ..domain.events import StoredEvent
from ..domain.sessions import SessionFacts, combine
from .schema import (
    agent_registrations,
    agents,
    fit,
    job_assignments,
    sessions,
    webhook_events,
    worker_connections,
)

# Each dialect's INSERT with ON CONFLICT (both take the same arguments).
INSERTS: dict[str, Callable[[Table], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_CHUNK = 1000  # keys per IN (...) list: well below either database's parameter limit

_REVOKE_AGENT = (
    update(agents)
    .where(
        and_(
            agents.c.entra_app_id == bindparam("agent"),
            # Only a registration the refusal followed; the latest refusal's time is kept.
            agents.c.last_registered_at <= bindparam("at"),
            or_(agents.c.revoked_at.is_(None), agents.c.revoked_at < bindparam("at")),
        )
    )
    .values(revoked_at=bindparam("at"))
)
_REVOKE_REGISTRATIONS = (
    update(agent_registrations)
    .where(
        and_(
            agent_registrations.c.entra_app_id == bindparam("agent"),
            agent_registrations.c.revoked.is_(False),
            agent_registrations.c.issued_at <= bindparam("at"),
        )
    )
    .values(revoked=True, revoked_at=bindparam("at"))
)

_CLOSE_CONNECTION = (
    update(worker_connections)
    .where(worker_connections.c.id == bindparam("connection"))
    .values(closed_at=bindparam("closed_at"), close_code=bindparam("code"), close_reason=bindparam("why"))
)


class SqlWrites:
    def __init__(self, dialect: str) -> None:
        """``dialect``: ``postgresql`` or ``sqlite`` (an engine's ``dialect.name``)."""
        self._insert = INSERTS[dialect]

    async def registrations(self, conn: AsyncConnection, registrations: Sequence[Registration]) -> None:
        """The registrations' audit rows (idempotent: a batch whose commit outcome was unknown may be written
        twice), and each agent upserted from its latest registration in the batch (the later one on a tie),
        counting them all."""
        if not registrations:
            return
        await conn.execute(
            self._insert(agent_registrations).on_conflict_do_nothing(index_elements=["id"]),
            [fit(agent_registrations, audit_row(r)) for r in registrations],
        )
        latest: dict[str, Registration] = {}
        counts: dict[str, int] = {}
        for r in registrations:
            key = r.entra_app_id
            counts[key] = counts.get(key, 0) + 1
            if key not in latest or r.registered_at >= latest[key].registered_at:
                latest[key] = r
        upsert = self._insert(agents)
        statement = upsert.on_conflict_do_update(
            index_elements=["entra_app_id"],
            set_={
                "enforce_client_authz": upsert.excluded.enforce_client_authz,
                "last_registered_at": upsert.excluded.last_registered_at,
                "last_worker_identity": upsert.excluded.last_worker_identity,
                "registration_count": agents.c.registration_count + upsert.excluded.registration_count,
                "token_expires_at": upsert.excluded.token_expires_at,
                # A newer registration makes the agent active again, unless a revocation written earlier
                # (another replica's) happened after it.
                "revoked_at": case(
                    (agents.c.revoked_at >= upsert.excluded.last_registered_at, agents.c.revoked_at),
                    else_=None,
                ),
            },
            # A replica's older registration arriving late must not overwrite a newer one.
            where=agents.c.last_registered_at <= upsert.excluded.last_registered_at,
        )
        # Sorted keys: replicas upserting the same agents lock rows in the same order (no deadlock).
        await conn.execute(
            statement,
            [
                fit(
                    agents,
                    {
                        "entra_app_id": key,
                        "enforce_client_authz": latest[key].enforce_client_authz,
                        "first_registered_at": latest[key].registered_at,
                        "last_registered_at": latest[key].registered_at,
                        "last_worker_identity": latest[key].worker_identity,
                        "registration_count": counts[key],
                        "token_expires_at": latest[key].expires_at,
                        "revoked_at": None,
                    },
                )
                for key in sorted(latest)
            ],
        )

    async def revocation(self, conn: AsyncConnection, revocation: Revocation) -> None:
        """The agent revoked, and its registrations issued up to the revocation marked revoked."""
        params = {"agent": revocation.entra_app_id, "at": revocation.revoked_at}
        await conn.execute(_REVOKE_AGENT, params)
        await conn.execute(_REVOKE_REGISTRATIONS, params)

    async def relay(self, conn: AsyncConnection, records: Sequence[RelayRecord]) -> None:
        """What the relay saw: connections, then their ends (an end never precedes its connection's row: it
        is submitted later, in this batch or a later one), then job assignments; idempotent."""
        opened = [fit(worker_connections, r._asdict()) for r in records if isinstance(r, WorkerConnection)]
        if opened:
            await conn.execute(
                self._insert(worker_connections).on_conflict_do_nothing(index_elements=["id"]), opened
            )
        closed = [
            {"connection": r.id, "closed_at": r.closed_at, "code": r.close_code, "why": r.close_reason[:512]}
            for r in records
            if isinstance(r, WorkerClosed)
        ]
        if closed:
            await conn.execute(_CLOSE_CONNECTION, closed)
        assigned = [fit(job_assignments, r._asdict()) for r in records if isinstance(r, JobAssigned)]
        if assigned:
            await conn.execute(
                self._insert(job_assignments).on_conflict_do_nothing(index_elements=["id"]), assigned
            )

    async def sessions(self, conn: AsyncConnection, facts: Sequence[SessionFacts], now: dt.datetime) -> None:
        """Merge ``facts`` into their sessions' rows (``now`` as their update time)."""
        if not facts:
            return
        merged = combine(facts)
        names = sorted(merged)
        created = await conn.execute(
            self._insert(sessions)
            .on_conflict_do_nothing(index_elements=["room_name"])
            .returning(sessions.c.room_name),
            [fit(sessions, merged[name].row(now)) for name in names],
        )
        inserted = set(created.scalars())
        stored = [name for name in names if name not in inserted]
        rows = []
        for start in range(0, len(stored), _CHUNK):
            locked = await conn.execute(
                select(sessions)
                .where(sessions.c.room_name.in_(stored[start : start + _CHUNK]))
                .order_by(sessions.c.room_name)
                .with_for_update()
            )
            for row in locked.mappings():
                known = SessionFacts.from_row(row)
                rows.append(fit(sessions, known.merge(merged[known.room_name]).row(now)))
        if rows:
            upsert = self._insert(sessions)
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["room_name"],
                    set_={c.name: upsert.excluded[c.name] for c in sessions.c if c.name != "room_name"},
                ),
                rows,
            )

    async def events(self, conn: AsyncConnection, items: Sequence[StoredEvent], now: dt.datetime) -> set[str]:
        """Store the events (distinct ids) whose ids were not stored before, and merge their facts (only
        theirs: a repeated id, even with other content, changes nothing); the ids that were new."""
        if not items:
            return set()
        result = await conn.execute(
            self._insert(webhook_events)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(webhook_events.c.id),
            [event_row(item, now) for item in sorted(items, key=lambda item: item.id)],
        )
        inserted = set(result.scalars())
        await self.sessions(
            conn, [item.facts for item in items if item.id in inserted and item.facts is not None], now
        )
        return inserted


def audit_row(registration: Registration) -> dict[str, Any]:
    """The ``agent_registrations`` row of a registration: its fields up to ``expires_at``, not revoked."""
    row = registration._asdict()
    del row["registered_at"]
    row["revoked"] = False
    return row


def event_row(item: StoredEvent, now: dt.datetime) -> dict[str, Any]:
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
