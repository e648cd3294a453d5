"""``lkps agents revoke <app-id>``: an operator cuts an agent off now. Every token issued to it so far stops
working: the relays close its workers within ``LKPS_RELAY_CHECK_INTERVAL`` (every replica reads the row) and
refuse its reconnects, and sessions are no longer dispatched to it, until it registers again, which Entra
decides: remove its app role first to keep it out."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from ..domain.audit import Revocation
from ..settings import DatabaseSettings
from ..storage.engine import create_engine
from ..storage.schema import agents
from ..storage.writes import SqlWrites


class UnknownAgentError(Exception):
    """The agent never registered: there is nothing to revoke."""


def canonical_app_id(value: str) -> str:
    """``value`` as a canonical GUID; ``ValueError`` naming the argument otherwise."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"app-id {value!r} is not an Entra app (client) ID: give the agent's GUID") from None


async def revoke_agent(settings: DatabaseSettings, app_id: str, now: dt.datetime) -> Revocation:
    """Revoke the agent's registrations made up to ``now``, as a refused registration does."""
    revocation = Revocation(entra_app_id=canonical_app_id(app_id), revoked_at=now)
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            found = await conn.scalar(
                select(agents.c.entra_app_id).where(agents.c.entra_app_id == revocation.entra_app_id)
            )
            if found is None:
                raise UnknownAgentError(
                    f"agent {revocation.entra_app_id} has never registered: nothing to revoke"
                )
            await SqlWrites(engine.dialect.name).revocation(conn, revocation)
    finally:
        await engine.dispose()
    return revocation
