"""Session lifecycle rows (``agent_jobs``): partial updates merged so that delivery order does not matter.

Each source (session start, each webhook) contributes facts: timestamps, identities, disconnect reasons.
Facts merge commutatively (earliest join, latest leave, first known identity) and the status is derived from
the merged facts, never stored as a transition, so a late or repeated event cannot move a session backwards.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import RowMapping, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import Insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .bulk import array_rows
from .models import agent_jobs, fit

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
# A leave and its reason travel together; the last leave is the one that ended the participation.
_LEAVES = {"participant_left_at": "disconnect_reason", "agent_left_at": "agent_disconnect_reason"}
_LEFT_OF_REASON = {reason: left for left, reason in _LEAVES.items()}


class JobFacts(NamedTuple):
    """What one source knows about one room's session; ``None`` means "not known here". (A named tuple:
    one is built for every webhook, at a quarter of a frozen dataclass's cost.)"""

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
        for left, reason in _LEAVES.items():
            mine, theirs = getattr(self, left), getattr(other, left)
            if theirs is not None and (mine is None or theirs >= mine):
                changes[left] = theirs
                changes[reason] = getattr(other, reason) or (
                    getattr(self, reason) if mine == theirs else None
                )
        return self._replace(**changes) if changes else self

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
        out: dict[str, Any] = self._asdict()
        out["status"] = self.status
        out["session_duration_s"] = _seconds(self.room_created_at, self.finished_at)
        out["participant_duration_s"] = _seconds(self.participant_joined_at, self.participant_left_at)
        out["agent_join_delay_s"] = _seconds(self.participant_joined_at, self.agent_joined_at)
        out["updated_at"] = now
        return out

    @classmethod
    def from_row(cls, row: RowMapping) -> JobFacts:
        return cls(**{name: row[name] for name in cls._fields})


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


async def merge_into_db(conn: AsyncConnection, facts: Sequence[JobFacts], now: dt.datetime) -> None:
    """Merge ``facts`` into ``agent_jobs`` inside the caller's transaction."""
    if not facts:
        return
    if conn.dialect.name == "postgresql":
        # One statement: the facts as JSON rows, combined and merged by PostgreSQL (see merge_facts_sql).
        await conn.exec_driver_sql(_MERGE_POSTGRESQL, (fact_rows(facts), now))
        return
    # SQLite (one writer at a time): read the stored rows, merge here, write back.
    merged = combine(facts)
    names = sorted(merged)
    for start in range(0, len(names), 1000):
        chunk = names[start : start + 1000]
        result = await conn.execute(select(agent_jobs).where(agent_jobs.c.room_name.in_(chunk)))
        for row in result.mappings():
            known = JobFacts.from_row(row)
            merged[known.room_name] = known.merge(merged[known.room_name])
    rows = [fit(agent_jobs, merged[name].row(now)) for name in names]
    await conn.execute(_upsert_sqlite(), rows)


_FACT_NAMES = JobFacts._fields


def fact_rows(facts: Sequence[JobFacts], event_ids: Sequence[str] | None = None) -> str:
    """The facts as JSON rows for :func:`merge_facts_sql` (one array each, in one C call), each with its
    event's id when ``event_ids`` are given. (PostgreSQL cuts the strings to their column's length.)"""
    if event_ids is None:
        return orjson.dumps(facts, default=tuple).decode()  # each JobFacts is its row
    return orjson.dumps([(*fact, event_id) for fact, event_id in zip(facts, event_ids, strict=True)]).decode()


# PostgreSQL: the same merge as JobFacts.merge and JobFacts.status, written in SQL, so that a batch is one
# statement and concurrent writers (replicas) need no lock: ON CONFLICT DO UPDATE evaluates the merge against
# the latest committed row. tests/service/test_jobs.py holds the two versions to the same results.


def _failed_sql(col: Callable[[str], str]) -> str:
    reasons = ", ".join(f"'{r}'" for r in sorted(FAILURE_REASONS))
    return " OR ".join(
        f"COALESCE({col(name)} IN ({reasons}), false)"
        for name in ("disconnect_reason", "agent_disconnect_reason")
    )


def _status_sql(col: Callable[[str], str]) -> str:
    """:attr:`JobFacts.status`, over the column expressions ``col(name)``."""
    failed = _failed_sql(col)
    return (
        f"CASE WHEN {col('finished_at')} IS NOT NULL THEN"
        f" CASE WHEN {col('agent_joined_at')} IS NULL THEN 'agent_never_joined'"
        f" WHEN ({failed}) OR {col('participant_joined_at')} IS NULL THEN 'failed' ELSE 'completed' END"
        f" WHEN {col('participant_left_at')} IS NOT NULL THEN"
        f" CASE WHEN ({failed}) THEN 'failed' ELSE 'completed' END"
        f" WHEN {col('participant_joined_at')} IS NOT NULL THEN"
        f" CASE WHEN {col('agent_joined_at')} IS NOT NULL THEN 'active' ELSE 'participant_joined' END"
        f" WHEN {col('room_created_at')} IS NOT NULL OR {col('agent_joined_at')} IS NOT NULL"
        " THEN 'room_created'"
        " ELSE 'requested' END"
    )


def _derived_sql(col: Callable[[str], str]) -> dict[str, str]:
    """The columns :meth:`JobFacts.row` derives (status and durations), over ``col(name)``."""

    def seconds(start: str, end: str) -> str:
        s, e = col(start), col(end)
        return (
            f"CASE WHEN {s} IS NOT NULL AND {e} IS NOT NULL"
            f" THEN GREATEST(0, EXTRACT(EPOCH FROM {e} - {s}))::float8 END"
        )

    return {
        "status": _status_sql(col),
        "session_duration_s": seconds("room_created_at", "finished_at"),
        "participant_duration_s": seconds("participant_joined_at", "participant_left_at"),
        "agent_join_delay_s": seconds("participant_joined_at", "agent_joined_at"),
    }


def _stored_merged_with_new(name: str) -> str:
    """``stored.merge(new)`` for one field, stored being ``agent_jobs`` and new ``EXCLUDED``."""
    if name in _FIRST_KNOWN:
        return f"COALESCE(agent_jobs.{name}, EXCLUDED.{name})"
    if name in _EARLIEST:
        return f"LEAST(agent_jobs.{name}, EXCLUDED.{name})"  # LEAST skips NULLs
    left = _LEFT_OF_REASON.get(name, name)
    new, stored = f"EXCLUDED.{left}", f"agent_jobs.{left}"
    take = f"({new} IS NOT NULL AND ({stored} IS NULL OR {new} >= {stored}))"
    if name == left:
        return f"CASE WHEN {take} THEN EXCLUDED.{left} ELSE agent_jobs.{left} END"
    keep_stored = f"CASE WHEN agent_jobs.{left} = EXCLUDED.{left} THEN agent_jobs.{name} END"
    return f"CASE WHEN {take} THEN COALESCE(EXCLUDED.{name}, {keep_stored}) ELSE agent_jobs.{name} END"


def _batch_combined(name: str) -> str:
    """:func:`combine` for one field, as an aggregate over a room's facts in batch order (``ord``)."""
    if name in _FIRST_KNOWN:
        return f"(array_agg({name} ORDER BY ord) FILTER (WHERE {name} IS NOT NULL))[1]"
    if name in _EARLIEST:
        return f"min({name})"
    if name in _LEFT_OF_REASON:  # the last reason given with the latest leave
        left = _LEFT_OF_REASON[name]
        given = f"{left} = {left}_latest AND {name} IS NOT NULL"
        return f"(array_agg({name} ORDER BY ord DESC) FILTER (WHERE {given}))[1]"
    return f"max({name})"


def merge_facts_sql(first: int, *, fresh: str | None = None) -> str:
    """``INSERT INTO agent_jobs`` merging a batch of facts: ``$first`` the facts as :func:`fact_rows`, then
    ``$first + 1`` the update time; with ``fresh`` (a CTE returning event ids), each row carries its event's
    id and only the facts of events in ``fresh`` count."""
    where = ""
    if fresh is not None:
        where = f" WHERE f.event_id IN (SELECT id FROM {fresh})"  # noqa: S608 - a CTE's name
    extra = [("event_id", "text")] if fresh is not None else []
    rows = f"({array_rows(first, agent_jobs, _FACT_NAMES, extra)}) AS f"
    now = f"${first + 1}"
    latest = ", ".join(f"max({left}) OVER (PARTITION BY room_name) AS {left}_latest" for left in _LEAVES)
    source = f"SELECT f.*, {latest} FROM {rows}{where}"  # noqa: S608 - names and placeholders only
    combined = ", ".join(f"{_batch_combined(name)} AS {name}" for name in _FACT_NAMES if name != "room_name")
    derived = _derived_sql(lambda name: name)
    stored_derived = _derived_sql(_stored_merged_with_new)
    columns = (*_FACT_NAMES, *derived, "updated_at")
    updates = [f"{name} = {_stored_merged_with_new(name)}" for name in _FACT_NAMES if name != "room_name"]
    updates += [f"{name} = {expression}" for name, expression in stored_derived.items()]
    return (
        f"INSERT INTO agent_jobs ({', '.join(columns)})"  # noqa: S608 - names and literals only, values are $n
        f" SELECT {', '.join(_FACT_NAMES)}, {', '.join(derived.values())}, {now}"
        f" FROM (SELECT room_name, {combined} FROM ({source}) AS s GROUP BY room_name) AS c"
        # Rows locked in one order by every writer: no deadlock between replicas.
        " ORDER BY room_name"
        f" ON CONFLICT (room_name) DO UPDATE SET {', '.join(updates)}, updated_at = EXCLUDED.updated_at"
    )


_MERGE_POSTGRESQL = merge_facts_sql(1)


@functools.cache
def _upsert_sqlite() -> Insert:
    insert = sqlite.insert(agent_jobs)
    return insert.on_conflict_do_update(
        index_elements=[agent_jobs.c.room_name],
        set_={c.name: insert.excluded[c.name] for c in agent_jobs.c if c.name != "room_name"},
    )
