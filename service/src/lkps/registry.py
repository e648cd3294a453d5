"""Which agents are registered (latest platform token unexpired, not revoked), and their authz setting.

Registrations and revocations made by this process are known at once (the database rows are written in
the background); those made through another replica are read from the database and cached briefly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from .errors import ApiError
from .models import agents

log = logging.getLogger(__name__)


class AgentRecord(NamedTuple):
    """An agent's latest registration: when it was made, when its token expires, whether it was revoked.
    (A named tuple: one is made on every registration, and cheaper to make than a frozen dataclass.)"""

    entra_app_id: str
    enforce_client_authz: bool
    registered_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None

    def active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class AgentRegistry:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], float],
        *,
        legacy_token_ttl: float,
        ttl: float = 30.0,
        miss_ttl: float = 1.0,
        db_timeout: float = 2.0,
    ) -> None:
        """``legacy_token_ttl``: the token lifetime assumed for rows written before expiries were stored."""
        self._engine = engine
        self._clock = clock
        self._legacy_token_ttl = dt.timedelta(seconds=legacy_token_ttl)
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._db_timeout = db_timeout
        self._entries: dict[str, tuple[AgentRecord | None, float]] = {}
        # Revocations made here, kept apart from the cache so they apply at once to any registration they
        # follow, whichever replica made it.
        self._revoked: dict[str, dt.datetime] = {}

    def record(self, agent: AgentRecord) -> None:
        key = agent.entra_app_id.lower()
        self._entries[key] = (agent, self._clock())
        revoked_at = self._revoked.get(key)
        if revoked_at is not None and revoked_at < agent.registered_at:
            del self._revoked[key]

    def revoke(self, entra_app_id: str, at: dt.datetime) -> None:
        """Revoke every registration of the agent made at or before ``at`` (the latest refusal)."""
        key = entra_app_id.lower()
        self._revoked[key] = max(at, self._revoked.get(key, at))

    async def lookup(self, entra_app_id: str, now: dt.datetime) -> AgentRecord | None:
        """The agent's newest registration (local or stored) with any revocation applied; ``None`` if it
        never registered. Whether it is active at ``now`` is the caller's question."""
        key = entra_app_id.lower()
        cached = self._entries.get(key)
        checked = self._clock()
        if cached is not None:
            record, checked_at = cached
            view = None if record is None else self._revoked_view(key, record)
            # Only an active registration is trusted for long: a missing, expired or revoked one may have
            # been renewed through another replica since.
            trusted_for = self._ttl if view is not None and view.active(now) else self._miss_ttl
            if checked - checked_at < trusted_for:
                return view
        local = cached[0] if cached is not None else None
        try:
            stored = await asyncio.wait_for(self._load(key), self._db_timeout)
        except (SQLAlchemyError, OSError, asyncio.TimeoutError) as exc:
            if local is not None:
                # The database is down: this process's own registration (or revocation) still stands.
                return self._revoked_view(key, local)
            log.warning("agent lookup failed", extra={"agent_entra_app_id": key, "error": type(exc).__name__})
            raise ApiError(
                503, "database_unavailable", "the agent registry could not be read; retry shortly"
            ) from None
        # The newer registration wins: the local one may be unwritten yet, or another replica's may be newer.
        best = local
        if stored is not None and (best is None or stored.registered_at >= best.registered_at):
            best = stored
        self._entries[key] = (best, checked)
        return self._revoked_view(key, best) if best is not None else None

    def _revoked_view(self, key: str, record: AgentRecord) -> AgentRecord:
        revoked_at = self._revoked.get(key)
        if record.revoked_at is None and revoked_at is not None and record.registered_at <= revoked_at:
            return record._replace(revoked_at=revoked_at)
        return record

    async def _load(self, key: str) -> AgentRecord | None:
        query = select(
            agents.c.entra_app_id,
            agents.c.enforce_client_authz,
            agents.c.last_registered_at,
            agents.c.token_expires_at,
            agents.c.revoked_at,
        ).where(agents.c.entra_app_id == key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        # Rows from before revision 0002 whose expiry could not be taken from the audit table: assume the
        # token lifetime configured now.
        expires_at = row.token_expires_at or row.last_registered_at + self._legacy_token_ttl
        return AgentRecord(
            row.entra_app_id,
            bool(row.enforce_client_authz),
            row.last_registered_at,
            expires_at,
            row.revoked_at,
        )
