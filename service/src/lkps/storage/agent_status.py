"""Agents' revocation and latest token expiry as stored, for the relay: one agent when a worker connects, and
in one query per round what the monitor must act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import agents

_CHUNK = 1000  # keys per IN (...) list: well below either database's parameter limit


class AgentStatus(NamedTuple):
    token_expires_at: dt.datetime | None  # the latest registration's token expiry
    revoked_at: dt.datetime | None


class AgentStatusStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def statuses(self, entra_app_ids: Collection[str]) -> dict[str, AgentStatus]:
        """The agents' rows (agents without one are absent); one statement per thousand agents."""
        keys = sorted(entra_app_ids)
        out: dict[str, AgentStatus] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = select(agents.c.entra_app_id, agents.c.token_expires_at, agents.c.revoked_at).where(
                    agents.c.entra_app_id.in_(keys[start : start + _CHUNK])
                )
                for row in await conn.execute(query):
                    out[row.entra_app_id] = AgentStatus(row.token_expires_at, row.revoked_at)
        return out

    async def cutoff_candidates(
        self, revoked_since: dt.datetime, expiring: Collection[str]
    ) -> dict[str, AgentStatus]:
        """In one statement: the agents revoked at or after ``revoked_since`` (few: revocations are rare), and
        the rows of the agents in ``expiring`` (those whose known expiry has passed: few, and not every
        connected agent, so the statement stays small however many workers are connected)."""
        keys = sorted(expiring)[:_CHUNK]
        condition = and_(agents.c.revoked_at.is_not(None), agents.c.revoked_at >= revoked_since)
        if keys:
            condition = or_(condition, agents.c.entra_app_id.in_(keys))
        query = select(agents.c.entra_app_id, agents.c.token_expires_at, agents.c.revoked_at).where(condition)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
            return {row.entra_app_id: AgentStatus(row.token_expires_at, row.revoked_at) for row in rows}
