"""Background audit writes: a bounded queue, batched inserts, retry while the database is down.

Request handlers only enqueue (never wait on the database). Rows stay queued and are retried until
the database is back; at shutdown the queue is flushed. Rows are dropped only when the queue is full,
and each drop is counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, bindparam, case, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .bulk import array_rows
from .db import rows_refused
from .jobs import JobFacts, merge_into_db
from .models import agent_registrations, agents, fit

log = logging.getLogger(__name__)


class Registration(NamedTuple):
    """One agent token issued: a row in ``agent_registrations`` and the agent's row in ``agents``.

    A named tuple, not a dataclass: one is made per registration, and a tuple is several times cheaper.
    """

    id: str
    entra_app_id: str
    worker_identity: str
    requested_by: str | None
    client_id: str | None
    requester_email: str | None
    identity_mode: str
    enforce_client_authz: bool
    issued_at: dt.datetime  # the token's nbf (whole seconds)
    expires_at: dt.datetime  # the token's exp
    # When the service registered the agent, to the microsecond: orders it against revocations.
    registered_at: dt.datetime

    def row(self) -> dict[str, Any]:
        """The audit row: the fields up to ``expires_at``, not revoked."""
        return dict(zip(REGISTRATION_COLUMNS, (*self[:10], False), strict=True))


REGISTRATION_COLUMNS = (
    "id",
    "entra_app_id",
    "worker_identity",
    "requested_by",
    "client_id",
    "requester_email",
    "identity_mode",
    "enforce_client_authz",
    "issued_at",
    "expires_at",
    "revoked",
)


@dataclass(frozen=True)
class Revocation:
    """A registration refused for a missing app role: the agent's earlier registrations are revoked."""

    entra_app_id: str
    revoked_at: dt.datetime


AuditRecord = Registration | Revocation | JobFacts


class AuditWriter:
    """Owns the queue and the one task that drains it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        queue_size: int,
        batch_size: int,
        flush_timeout: float,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        max_backoff: float = 5.0,
    ) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_timeout = flush_timeout
        self._now = now
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.written = 0
        self.batches = 0
        self.dropped = 0
        self.failed_attempts = 0

    @property
    def pending(self) -> int:
        """Records not yet written: queued, plus the batch being written (or retried)."""
        return self._queue.qsize() + self._in_flight

    def submit(self, record: AuditRecord) -> bool:
        """Queue a record without waiting; ``False`` (and a logged, counted drop) when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            # One line per power of two keeps a long outage from flooding the log while still counting.
            if self.dropped & (self.dropped - 1) == 0:
                log.error(
                    "audit queue full: record dropped",
                    extra={"dropped_total": self.dropped, "queue_size": self._queue.maxsize},
                )
            return False
        return True

    async def flush(self) -> None:
        """Wait until every record queued so far is written (for orderly handovers and tests)."""
        await self._queue.join()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lkps-audit-writer")

    async def stop(self) -> None:
        """Flush what is queued (waiting up to the flush timeout), then stop the writer."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), self._flush_timeout)
        except asyncio.TimeoutError:
            log.error(
                "audit flush timed out at shutdown: records lost",
                extra={"lost": self.pending, "flush_timeout_s": self._flush_timeout},
            )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            await self._write_until_done(batch)
            self._in_flight = 0
            for _ in batch:
                self._queue.task_done()

    async def _write_until_done(self, batch: list[AuditRecord]) -> None:
        attempt = 0
        while True:
            try:
                try:
                    async with self._engine.begin() as conn:
                        await self._write(conn, batch)
                except DBAPIError as exc:
                    if not rows_refused(exc):
                        raise
                    await self._write_singly(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any database or driver failure: keep the rows and retry
                attempt += 1
                self.failed_attempts += 1
                delay = min(self._max_backoff, 0.05 * 2**attempt)
                log.warning(
                    "audit write failed; retrying",
                    extra={
                        "rows": len(batch),
                        "attempt": attempt,
                        "retry_in_s": delay,
                        "error": type(exc).__name__,
                    },
                )
                await asyncio.sleep(delay)
                continue
            self.written += len(batch)
            self.batches += 1
            if attempt:
                log.info("audit writes recovered", extra={"rows": len(batch), "attempts": attempt + 1})
            return

    async def _write_singly(self, batch: list[AuditRecord]) -> None:
        """A record the database refuses must not block the queue: write one by one, drop only those."""
        for record in batch:
            try:
                async with self._engine.begin() as conn:
                    await self._write(conn, [record])
            except DBAPIError as exc:
                if not rows_refused(exc):
                    raise
                self.dropped += 1
                self.written -= 1  # the caller counts the whole batch as written
                log.error(
                    "audit record rejected by the database: dropped",
                    extra={"record": type(record).__name__, "error": type(exc).__name__},
                )

    async def _write(self, conn: AsyncConnection, batch: list[AuditRecord]) -> None:
        # Registrations and revocations are written in the order they happened: a revocation marks only
        # the registration rows already written, never one made after it (possibly in the same second).
        run: list[Registration] = []
        for record in batch:
            if isinstance(record, Registration):
                run.append(record)
            elif isinstance(record, Revocation):
                await _write_registrations(conn, run)
                run = []
                await _write_revocation(conn, record)
        await _write_registrations(conn, run)
        facts = [r for r in batch if isinstance(r, JobFacts)]
        if facts:
            await merge_into_db(conn, facts, self._now())


_AUDITED = REGISTRATION_COLUMNS[:-1]  # the audit row's columns but ``revoked``: Registration's first fields
# One statement writes a whole batch on PostgreSQL ($1: the registrations, one JSON array of arrays). It does
# what write_registrations_sqlalchemy does (a test holds the two to the same result): the audit rows, then
# each agent upserted from its latest registration in the batch (the later one on a tie), counting them all.
_REGISTER_POSTGRESQL = (
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


async def _write_registrations(conn: AsyncConnection, registrations: list[Registration]) -> None:
    if not registrations:
        return
    if conn.dialect.name == "postgresql":
        # orjson writes the whole batch in one C call (named tuples as arrays, times in RFC 3339): a few µs
        # a row less than binary COPY, whose encoder makes Python-level calls for every value.
        rows = orjson.dumps(registrations, default=tuple).decode()
        await conn.exec_driver_sql(_REGISTER_POSTGRESQL, (rows,))
        return
    await write_registrations_sqlalchemy(conn, registrations)


async def write_registrations_sqlalchemy(conn: AsyncConnection, registrations: list[Registration]) -> None:
    """The registrations' audit rows (idempotent: a batch whose commit outcome was unknown may be written
    twice) and agent upserts through SQLAlchemy: SQLite's path, and on PostgreSQL the reference that
    ``_REGISTER_POSTGRESQL`` is tested against."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    await conn.execute(
        insert(agent_registrations).on_conflict_do_nothing(index_elements=["id"]),
        [fit(agent_registrations, r.row()) for r in registrations],
    )
    latest: dict[str, Registration] = {}
    counts: dict[str, int] = {}
    for r in registrations:
        key = r.entra_app_id
        counts[key] = counts.get(key, 0) + 1
        if key not in latest or r.registered_at >= latest[key].registered_at:
            latest[key] = r
    upsert = insert(agents)
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


async def _write_revocation(conn: AsyncConnection, revocation: Revocation) -> None:
    params = {"agent": revocation.entra_app_id, "at": revocation.revoked_at}
    await conn.execute(_REVOKE_AGENT, params)
    await conn.execute(_REVOKE_REGISTRATIONS, params)
