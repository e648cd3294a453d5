"""Which agents have registered, and whether each enforces client-to-agent authorization.

Registrations made by this process are known at once (the database row is written in the background);
agents registered through another replica are read from the database and cached briefly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from .errors import ApiError
from .models import agents

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentRecord:
    entra_app_id: str
    enforce_client_authz: bool
    registered_at: dt.datetime


class AgentRegistry:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], float],
        *,
        ttl: float = 30.0,
        miss_ttl: float = 1.0,
        db_timeout: float = 2.0,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._db_timeout = db_timeout
        self._entries: dict[str, tuple[AgentRecord | None, float]] = {}

    def record(self, agent: AgentRecord) -> None:
        self._entries[agent.entra_app_id.lower()] = (agent, self._clock())

    async def lookup(self, entra_app_id: str) -> AgentRecord | None:
        key = entra_app_id.lower()
        cached = self._entries.get(key)
        now = self._clock()
        if cached is not None:
            record, checked_at = cached
            if now - checked_at < (self._ttl if record is not None else self._miss_ttl):
                return record
        local = cached[0] if cached is not None else None
        try:
            stored = await asyncio.wait_for(self._load(key), self._db_timeout)
        except (SQLAlchemyError, OSError, asyncio.TimeoutError) as exc:
            if local is not None:
                return local  # the database is down: this process's own registration still stands
            log.warning("agent lookup failed", extra={"agent_entra_app_id": key, "error": type(exc).__name__})
            raise ApiError(
                503, "database_unavailable", "the agent registry could not be read; retry shortly"
            ) from None
        # The newer registration wins: the local one may be unwritten yet, or another replica's may be newer.
        best = local
        if stored is not None and (best is None or stored.registered_at >= best.registered_at):
            best = stored
        self._entries[key] = (best, now)
        return best

    async def _load(self, key: str) -> AgentRecord | None:
        query = select(
            agents.c.entra_app_id, agents.c.enforce_client_authz, agents.c.last_registered_at
        ).where(agents.c.entra_app_id == key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return AgentRecord(row.entra_app_id, bool(row.enforce_client_authz), row.last_registered_at)
