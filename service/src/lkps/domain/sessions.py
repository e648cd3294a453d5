"""Sessions: one row per session (its room), merged from partial facts so that delivery order does not matter.

Each source (session start, each webhook) contributes facts: timestamps, identities, disconnect reasons.
Facts merge commutatively (earliest join, latest leave, first known identity) and the status is derived from
the merged facts, never stored as a transition, so a late or repeated event cannot move a session backwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

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

# How each fact merges: the first known value, the earliest time, or (a leave with its reason) the latest.
FIRST_KNOWN = (
    "room_sid",
    "agent_entra_app_id",
    "client_id",
    "participant_identity",
    "participant_cwid",
    "agent_identity",
)
EARLIEST = ("requested_at", "room_created_at", "participant_joined_at", "agent_joined_at", "finished_at")
# A leave and its reason travel together; the last leave is the one that ended the participation.
LEAVES = {"participant_left_at": "disconnect_reason", "agent_left_at": "agent_disconnect_reason"}


class SessionFacts(NamedTuple):
    """What one source knows about one session (its room); ``None`` means "not known here"."""

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

    def merge(self, other: SessionFacts) -> SessionFacts:
        changes: dict[str, Any] = {}
        for name in FIRST_KNOWN:
            if getattr(self, name) is None and getattr(other, name) is not None:
                changes[name] = getattr(other, name)
        for name in EARLIEST:
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None and (mine is None or theirs < mine):
                changes[name] = theirs
        for left, reason in LEAVES.items():
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
        """The session's row: the facts, the status and durations derived from them, ``now`` as updated."""
        out: dict[str, Any] = self._asdict()
        out["status"] = self.status
        out["session_duration_s"] = _seconds(self.room_created_at, self.finished_at)
        out["participant_duration_s"] = _seconds(self.participant_joined_at, self.participant_left_at)
        out["agent_join_delay_s"] = _seconds(self.participant_joined_at, self.agent_joined_at)
        out["updated_at"] = now
        return out

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> SessionFacts:
        return cls(**{name: row[name] for name in cls._fields})


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def combine(facts: Iterable[SessionFacts]) -> dict[str, SessionFacts]:
    """Merge facts per session (room name), in the order given."""
    out: dict[str, SessionFacts] = {}
    for item in facts:
        current = out.get(item.room_name)
        out[item.room_name] = item if current is None else current.merge(item)
    return out
