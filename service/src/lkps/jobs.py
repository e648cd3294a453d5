"""Session lifecycle rows (``agent_jobs``): partial updates merged so that delivery order does not matter.

Each source (session start, each webhook) contributes facts: timestamps, identities, disconnect reasons.
Facts merge commutatively (earliest join, latest leave, first known identity) and the status is derived from
the merged facts, never stored as a transition, so a late or repeated event cannot move a session backwards.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import RowMapping, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import Insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .bulk import insert_rows
from .models import agent_jobs, fit

# Serializes lifecycle merges across replicas on PostgreSQL (SQLite has a single writer anyway).
_MERGE_LOCK_KEY = 0x6C6B7073_0001

# Disconnect reasons that mean the session broke rather than ended.
FAILURE_REASONS = frozenset(
    {
        "JOIN_FAILURE",
        "STATE_MISMATCH",
        "MEDIA_FAILURE",
        "AGENT_ERROR",
        "SIGNAL_CLOSE",
        "CONNECTION_TIMEOUT",
        "SIP_TRUNK_FAILURE",
    }
)

_FIRST_KNOWN = (
    "room_sid",
    "agent_entra_app_id",
    "client_id",
    "participant_identity",
    "participant_cwid",
    "agent_identity",
)
_EARLIEST = ("requested_at", "room_created_at", "participant_joined_at", "agent_joined_at", "finished_at")


@dataclass(frozen=True)
class JobFacts:
    """What one source knows about one room's session; ``None`` means "not known here"."""

    room_name: str
    room_sid: str | None = None
    agent_entra_app_id: str | None = None
    client_id: str | None = None
    participant_identity: str | None = None
    participant_cwid: str | None = None
    agent_identity: str | None = None
    requested_at: dt.datetime | None = None
    room_created_at: dt.datetime | None = None
    participant_joined_at: dt.datetime | None = None
    agent_joined_at: dt.datetime | None = None
    participant_left_at: dt.datetime | None = None
    agent_left_at: dt.datetime | None = None
    disconnect_reason: str | None = None
    agent_disconnect_reason: str | None = None
    finished_at: dt.datetime | None = None

    def merge(self, other: JobFacts) -> JobFacts:
        changes: dict[str, Any] = {}
        for name in _FIRST_KNOWN:
            if getattr(self, name) is None and getattr(other, name) is not None:
                changes[name] = getattr(other, name)
        for name in _EARLIEST:
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None and (mine is None or theirs < mine):
                changes[name] = theirs
        # A leave and its reason travel together; the last leave is the one that ended the participation.
        for left, reason in (
            ("participant_left_at", "disconnect_reason"),
            ("agent_left_at", "agent_disconnect_reason"),
        ):
            mine, theirs = getattr(self, left), getattr(other, left)
            if theirs is not None and (mine is None or theirs >= mine):
                changes[left] = theirs
                changes[reason] = getattr(other, reason) or (
                    getattr(self, reason) if mine == theirs else None
                )
        return replace(self, **changes) if changes else self

    @property
    def status(self) -> str:
        failed = self.disconnect_reason in FAILURE_REASONS or self.agent_disconnect_reason in FAILURE_REASONS
        if self.finished_at is not None:
            if self.agent_joined_at is None:
                return "agent_never_joined"
            if failed or self.participant_joined_at is None:
                return "failed"
            return "completed"
        if self.participant_left_at is not None:
            return "failed" if failed else "completed"
        if self.participant_joined_at is not None:
            return "active" if self.agent_joined_at is not None else "participant_joined"
        if self.room_created_at is not None or self.agent_joined_at is not None:
            return "room_created"
        return "requested"

    def row(self, now: dt.datetime) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status
        out["session_duration_s"] = _seconds(self.room_created_at, self.finished_at)
        out["participant_duration_s"] = _seconds(self.participant_joined_at, self.participant_left_at)
        out["agent_join_delay_s"] = _seconds(self.participant_joined_at, self.agent_joined_at)
        out["updated_at"] = now
        return out

    @classmethod
    def from_row(cls, row: RowMapping) -> JobFacts:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def combine(facts: Iterable[JobFacts]) -> dict[str, JobFacts]:
    """Merge facts per room (within one batch)."""
    out: dict[str, JobFacts] = {}
    for item in facts:
        current = out.get(item.room_name)
        out[item.room_name] = item if current is None else current.merge(item)
    return out


async def lock_lifecycle(conn: AsyncConnection) -> None:
    """Hold the lifecycle lock until the transaction ends (PostgreSQL; taking it twice is harmless)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MERGE_LOCK_KEY})


async def merge_into_db(
    conn: AsyncConnection, facts: Sequence[JobFacts], now: dt.datetime, *, locked: bool = False
) -> None:
    """Merge ``facts`` into ``agent_jobs`` inside the caller's transaction (``locked``: the caller already
    took :func:`lock_lifecycle` in it, which saves a round trip)."""
    if not facts:
        return
    if not locked:
        await lock_lifecycle(conn)
    merged = combine(facts)
    names = sorted(merged)
    if conn.dialect.name == "postgresql":
        # The stored rows in one query (one array parameter), the merged ones in one batch (see lkps.bulk).
        stored = await conn.exec_driver_sql(_SELECT_STORED_POSTGRESQL, (names,))
        for values in stored:
            known = JobFacts(**dict(zip(_FACT_NAMES, values, strict=True)))
            merged[known.room_name] = known.merge(merged[known.room_name])
        rows = [merged[name].row(now) for name in names]
        await insert_rows(
            conn, agent_jobs, _JOB_COLUMNS, [[row[c] for c in _JOB_COLUMNS] for row in rows], _UPSERT_SUFFIX
        )
        return
    for start in range(0, len(names), 1000):
        chunk = names[start : start + 1000]
        result = await conn.execute(select(agent_jobs).where(agent_jobs.c.room_name.in_(chunk)))
        for row in result.mappings():
            known = JobFacts.from_row(row)
            merged[known.room_name] = known.merge(merged[known.room_name])
    rows = [fit(agent_jobs, merged[name].row(now)) for name in names]
    await conn.execute(_upsert_sqlite(), rows)


_FACT_NAMES = tuple(f.name for f in fields(JobFacts))
_JOB_COLUMNS = tuple(c.name for c in agent_jobs.c)
_SELECT_STORED_POSTGRESQL = (
    f"SELECT {', '.join(_FACT_NAMES)} FROM agent_jobs WHERE room_name = ANY($1::text[])"  # noqa: S608
)
_UPSERT_SUFFIX = "ON CONFLICT (room_name) DO UPDATE SET " + ", ".join(
    f"{name} = EXCLUDED.{name}" for name in _JOB_COLUMNS if name != "room_name"
)


@functools.cache
def _upsert_sqlite() -> Insert:
    insert = sqlite.insert(agent_jobs)
    return insert.on_conflict_do_update(
        index_elements=[agent_jobs.c.room_name],
        set_={c.name: insert.excluded[c.name] for c in agent_jobs.c if c.name != "room_name"},
    )
