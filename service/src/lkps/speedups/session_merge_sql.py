"""Part of speedup ``bulk``: :meth:`SessionFacts.merge` and :attr:`SessionFacts.status` written in SQL, so
that a batch of facts is one PostgreSQL statement and concurrent writers (replicas) need no lock:
``ON CONFLICT DO UPDATE`` evaluates the merge against the latest committed row.
tests/service/speedups/test_bulk.py holds the two versions to the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from ..domain.sessions import EARLIEST, FAILURE_REASONS, FIRST_KNOWN, LEAVES, SessionFacts
from ..storage.schema import sessions
from .array_rows import array_rows

_FACT_NAMES = SessionFacts._fields
_LEFT_OF_REASON = {reason: left for left, reason in LEAVES.items()}


def fact_rows(facts: Sequence[SessionFacts], event_ids: Sequence[str] | None = None) -> str:
    """The facts as JSON rows for :func:`merge_facts_sql` (one array each, in one C call), each with its
    event's id when ``event_ids`` are given. (PostgreSQL cuts the strings to their column's length.)"""
    if event_ids is None:
        return orjson.dumps(facts, default=tuple).decode()  # each SessionFacts is its row
    return orjson.dumps([(*fact, event_id) for fact, event_id in zip(facts, event_ids, strict=True)]).decode()


def _failed_sql(col: Callable[[str], str]) -> str:
    reasons = ", ".join(f"'{r}'" for r in sorted(FAILURE_REASONS))
    return " OR ".join(
        f"COALESCE({col(name)} IN ({reasons}), false)"
        for name in ("disconnect_reason", "agent_disconnect_reason")
    )


def _status_sql(col: Callable[[str], str]) -> str:
    """:attr:`SessionFacts.status`, over the column expressions ``col(name)``."""
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
    """The columns :meth:`SessionFacts.row` derives (status and durations), over ``col(name)``."""

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
    """``stored.merge(new)`` for one field, stored being ``sessions`` and new ``EXCLUDED``."""
    if name in FIRST_KNOWN:
        return f"COALESCE(sessions.{name}, EXCLUDED.{name})"
    if name in EARLIEST:
        return f"LEAST(sessions.{name}, EXCLUDED.{name})"  # LEAST skips NULLs
    left = _LEFT_OF_REASON.get(name, name)
    new, stored = f"EXCLUDED.{left}", f"sessions.{left}"
    take = f"({new} IS NOT NULL AND ({stored} IS NULL OR {new} >= {stored}))"
    if name == left:
        return f"CASE WHEN {take} THEN EXCLUDED.{left} ELSE sessions.{left} END"
    keep_stored = f"CASE WHEN sessions.{left} = EXCLUDED.{left} THEN sessions.{name} END"
    return f"CASE WHEN {take} THEN COALESCE(EXCLUDED.{name}, {keep_stored}) ELSE sessions.{name} END"


def _batch_combined(name: str) -> str:
    """:func:`lkps.domain.sessions.combine` for one field, as an aggregate over a session's facts in batch
    order (``ord``)."""
    if name in FIRST_KNOWN:
        return f"(array_agg({name} ORDER BY ord) FILTER (WHERE {name} IS NOT NULL))[1]"
    if name in EARLIEST:
        return f"min({name})"
    if name in _LEFT_OF_REASON:  # the last reason given with the latest leave
        left = _LEFT_OF_REASON[name]
        given = f"{left} = {left}_latest AND {name} IS NOT NULL"
        return f"(array_agg({name} ORDER BY ord DESC) FILTER (WHERE {given}))[1]"
    return f"max({name})"


def merge_facts_sql(first: int, *, fresh: str | None = None) -> str:
    """``INSERT INTO sessions`` merging a batch of facts: ``$first`` the facts as :func:`fact_rows`, then
    ``$first + 1`` the update time; with ``fresh`` (a CTE returning event ids), each row carries its event's
    id and only the facts of events in ``fresh`` count."""
    where = ""
    if fresh is not None:
        where = f" WHERE f.event_id IN (SELECT id FROM {fresh})"  # noqa: S608 - a CTE's name
    extra = [("event_id", "text")] if fresh is not None else []
    rows = f"({array_rows(first, sessions, _FACT_NAMES, extra)}) AS f"
    now = f"${first + 1}"
    latest = ", ".join(f"max({left}) OVER (PARTITION BY room_name) AS {left}_latest" for left in LEAVES)
    source = f"SELECT f.*, {latest} FROM {rows}{where}"  # noqa: S608 - names and placeholders only
    combined = ", ".join(f"{_batch_combined(name)} AS {name}" for name in _FACT_NAMES if name != "room_name")
    derived = _derived_sql(lambda name: name)
    stored_derived = _derived_sql(_stored_merged_with_new)
    columns = (*_FACT_NAMES, *derived, "updated_at")
    updates = [f"{name} = {_stored_merged_with_new(name)}" for name in _FACT_NAMES if name != "room_name"]
    updates += [f"{name} = {expression}" for name, expression in stored_derived.items()]
    return (
        f"INSERT INTO sessions ({', '.join(columns)})"  # noqa: S608 - names and literals only, values are $n
        f" SELECT {', '.join(_FACT_NAMES)}, {', '.join(derived.values())}, {now}"
        f" FROM (SELECT room_name, {combined} FROM ({source}) AS s GROUP BY room_name) AS c"
        # Rows locked in one order by every writer: no deadlock between replicas.
        " ORDER BY room_name"
        f" ON CONFLICT (room_name) DO UPDATE SET {', '.join(updates)}, updated_at = EXCLUDED.updated_at"
    )
