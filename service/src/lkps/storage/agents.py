"""Agents' latest registrations as stored in ``agents``, for the registry (:mod:`lkps.domain.agents`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.agents import AgentRecord, StoreUnavailableError
from .schema import agents


class AgentStore:
    def __init__(self, engine: AsyncEngine, *, legacy_token_ttl: float) -> None:
        """``legacy_token_ttl``: the token lifetime assumed for rows written before expiries were stored."""
        self._engine = engine
        self._legacy_token_ttl = dt.timedelta(seconds=legacy_token_ttl)

    async def load(self, entra_app_id: str) -> AgentRecord | None:
        query = select(
            agents.c.entra_app_id,
            agents.c.enforce_client_authz,
            agents.c.last_registered_at,
            agents.c.token_expires_at,
            agents.c.revoked_at,
        ).where(agents.c.entra_app_id == entra_app_id)
        try:
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
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
