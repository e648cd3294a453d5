"""What the admin views and ``lkps agents``/``lkps sessions`` read: the ``agents`` and ``sessions`` tables,
filtered and a page at a time, as plain dicts ready for JSON or a table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import agents, sessions

AgentState = Literal["registered", "expired", "revoked"]
AGENT_STATES: tuple[AgentState, ...] = ("registered", "expired", "revoked")
# What domain.sessions.SessionFacts.status can say.
SESSION_STATES = (
    "requested",
    "room_created",
    "participant_joined",
    "active",
    "completed",
    "failed",
    "agent_never_joined",
)
MAX_LIMIT = 500
MAX_OFFSET = 100_000
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Page:
    """One page of rows; ``next_offset`` is where the next page starts, ``None`` on the last."""

    rows: list[dict[str, Any]]
    next_offset: int | None


@dataclass(frozen=True)
class SessionFilter:
    agent: str | None = None
    state: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def agent_state(row: Any, now: dt.datetime) -> AgentState:
    """Revoked (a refused registration revoked it and none succeeded since), expired (its latest token
    expired without a renewal) or registered."""
    if row.revoked_at is not None:
        return "revoked"
    if row.token_expires_at is not None and row.token_expires_at <= now:
        return "expired"
    return "registered"


async def list_agents(
    engine: AsyncEngine,
    *,
    now: dt.datetime,
    state: AgentState | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Page:
    """Agents by app ID, with their registration state at ``now``."""
    query = select(agents).order_by(agents.c.entra_app_id)
    if state == "revoked":
        query = query.where(agents.c.revoked_at.is_not(None))
    elif state == "expired":
        query = query.where(agents.c.revoked_at.is_(None), agents.c.token_expires_at <= now)
    elif state == "registered":
        query = query.where(
            agents.c.revoked_at.is_(None),
            or_(agents.c.token_expires_at.is_(None), agents.c.token_expires_at > now),
        )
    rows, next_offset = await _page(engine, query, limit, offset)
    return Page(
        [
            {
                "entra_app_id": row.entra_app_id,
                "state": agent_state(row, now),
                "enforce_client_authz": bool(row.enforce_client_authz),
                "first_registered_at": row.first_registered_at,
                "last_registered_at": row.last_registered_at,
                "registration_count": row.registration_count,
                "last_worker_identity": row.last_worker_identity,
                "token_expires_at": row.token_expires_at,
                "revoked_at": row.revoked_at,
            }
            for row in rows
        ],
        next_offset,
    )


def session_started_at() -> Any:
    """When a session began, as far as its row knows: requested through the service, else the room's
    creation (a room the service did not start), else the row's last change."""
    return func.coalesce(sessions.c.requested_at, sessions.c.room_created_at, sessions.c.updated_at)


async def list_sessions(
    engine: AsyncEngine, where: SessionFilter, *, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page:
    """Session lifecycle rows, newest first (by :func:`session_started_at`)."""
    started = session_started_at()
    query = select(sessions).order_by(started.desc(), sessions.c.room_name)
    conditions = []
    if where.agent is not None:
        conditions.append(sessions.c.agent_entra_app_id == where.agent)
    if where.state is not None:
        conditions.append(sessions.c.status == where.state)
    if where.since is not None:
        conditions.append(started >= where.since)
    if where.until is not None:
        conditions.append(started < where.until)
    if conditions:
        query = query.where(and_(*conditions))
    rows, next_offset = await _page(engine, query, limit, offset)
    # column names are sqlalchemy's quoted_name, a str subclass orjson does not take as a key
    return Page([_session({str(k): v for k, v in row._asdict().items()}) for row in rows], next_offset)


def _session(row: dict[str, Any]) -> dict[str, Any]:
    # the column is ``status``; the views call it ``state``, as they do an agent's
    return {"room_name": row.pop("room_name"), "state": row.pop("status"), **row}


async def _page(
    engine: AsyncEngine, query: Select[Any], limit: int, offset: int
) -> tuple[list[Any], int | None]:
    # one row past the page says whether another page follows
    async with engine.connect() as conn:
        rows = list((await conn.execute(query.limit(limit + 1).offset(offset))).all())
    more = len(rows) > limit
    return rows[:limit], offset + limit if more and offset + limit <= MAX_OFFSET else None
