"""Background audit writes: a bounded queue, batched inserts, retry while the database is down.

Request handlers only enqueue (never wait on the database). Rows stay queued and are retried until
the database is back; at shutdown the queue is flushed. Rows are dropped only when the queue is full,
and each drop is counted and logged.

A record that can never be stored (the database refuses its values, or they cannot even be encoded for it:
a lone surrogate from a token's claim, say) is set aside: counted in ``set_aside``, logged by its type, the
error's class and the fields at fault (never their values), and the queue moves on. A batch that stays
unwritten for ``stuck_after`` seconds for any other reason (a lock that never frees, an error the writer does
not know) makes ``stuck`` true, which ``GET /api/health`` reports as reason ``audit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

import orjson
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..domain.audit import AuditRecord, Registration, Revocation
from ..domain.sessions import SessionFacts
from .engine import rows_refused
from .writes import SqlWrites

log = logging.getLogger(__name__)


class AuditWriter:
    """Owns the queue and the one task that drains it."""

    def __init__(
        self,
        engine: AsyncEngine,
        writes: SqlWrites,
        *,
        queue_size: int,
        batch_size: int,
        flush_timeout: float,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        max_backoff: float = 5.0,
        stuck_after: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._writes = writes
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_timeout = flush_timeout
        self._now = now
        self._max_backoff = max_backoff
        self._stuck_after = stuck_after
        self._monotonic = monotonic
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._batch_since: float | None = None  # when the batch being written was taken from the queue
        self.written = 0
        self.batches = 0
        self.dropped = 0  # records not stored: the queue was full, or set aside
        self.set_aside = 0  # records that can never be stored (see the module docstring)
        self.failed_attempts = 0

    @property
    def stuck(self) -> bool:
        """Whether the writer has stopped making progress: its task ended while the app runs, or one batch has
        been unwritten for longer than ``stuck_after`` seconds."""
        if self._task is not None and self._task.done():
            return True
        since = self._batch_since
        return since is not None and self._monotonic() - since > self._stuck_after

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
            self._batch_since = self._monotonic()
            await self._write_until_done(batch)
            self._in_flight = 0
            self._batch_since = None
            for _ in batch:
                self._queue.task_done()

    async def _write_until_done(self, batch: list[AuditRecord]) -> None:
        attempt = 0
        while True:
            try:
                try:
                    async with self._engine.begin() as conn:
                        await self._write(conn, batch)
                except Exception as exc:
                    if not unstorable(exc):
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
        """A record that can never be stored must not block the queue: write one by one, set aside only those.
        Any other failure is raised (the batch is retried, its records already written are idempotent)."""
        for record in batch:
            try:
                async with self._engine.begin() as conn:
                    await self._write(conn, [record])
            except Exception as exc:
                if not unstorable(exc):
                    raise
                self.set_aside += 1
                self.dropped += 1  # every record not stored counts in dropped; these in set_aside too
                self.written -= 1  # the caller counts the whole batch as written
                log.error(
                    "audit record cannot be stored: set aside",
                    extra={
                        "record": type(record).__name__,
                        "error": type(exc).__name__,
                        "fields": unencodable_fields(record),
                        "set_aside_total": self.set_aside,
                    },
                )

    async def _write(self, conn: AsyncConnection, batch: list[AuditRecord]) -> None:
        # Registrations and revocations are written in the order they happened: a revocation marks only
        # the registration rows already written, never one made after it (possibly in the same second).
        run: list[Registration] = []
        for record in batch:
            if isinstance(record, Registration):
                run.append(record)
            elif isinstance(record, Revocation):
                await self._writes.registrations(conn, run)
                run = []
                await self._writes.revocation(conn, record)
        await self._writes.registrations(conn, run)
        await self._writes.sessions(conn, [r for r in batch if isinstance(r, SessionFacts)], self._now())


def unstorable(exc: BaseException) -> bool:
    """Whether ``exc`` says the rows themselves can never be written, as opposed to the database being away:
    the database refused their values (:func:`rows_refused`), or they could not be encoded for it (a lone
    surrogate is not UTF-8: asyncpg, SQLite's module or orjson for speedup ``bulk`` fail before sending)."""
    if isinstance(exc, DBAPIError) and rows_refused(exc):
        return True
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen:  # the error, what it wraps, what caused that
        if isinstance(cause, (UnicodeError, orjson.JSONEncodeError)):
            return True
        seen.append(cause)
        inner = cause.orig if isinstance(cause, StatementError) else None
        cause = inner or cause.__cause__ or cause.__context__
    return False


def unencodable_fields(record: AuditRecord) -> list[str]:
    """The names of ``record``'s text fields that are not valid UTF-8 (their values are never logged)."""
    bad = []
    for name, value in zip(record._fields, record, strict=True):
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                bad.append(name)
    return bad
