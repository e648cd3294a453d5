"""Which agents are registered (latest platform token unexpired, not revoked), and their authz setting.

Registrations and revocations made by this process are known at once (the database rows are written in
the background); those made through another replica are read from the store and cached briefly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple, Protocol

from ..errors import ApiError
from .times import iso

log = logging.getLogger(__name__)


class AgentRecord(NamedTuple):
    """An agent's latest registration: when it was made, when its token expires, whether it was revoked."""

    entra_app_id: str
    enforce_client_authz: bool
    registered_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None

    def active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class StoreUnavailableError(Exception):
    """The stored registrations could not be read."""


class AgentStore(Protocol):
    async def load(self, entra_app_id: str) -> AgentRecord | None:
        """The agent's stored registration (``None`` if it never registered); :class:`StoreUnavailableError`
        if the store cannot be read."""
        ...


class AgentRegistry:
    def __init__(
        self,
        store: AgentStore,
        clock: Callable[[], float],
        *,
        ttl: float = 30.0,
        miss_ttl: float = 1.0,
        store_timeout: float = 2.0,
        max_entries: int = 10_000,
    ) -> None:
        """``max_entries`` (``LKPS_REGISTRY_CACHE_SIZE``) bounds both the cache and the revocations made here:
        the least recently used leaves first, so a flood of unknown agent IDs cannot grow memory."""
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._store_timeout = store_timeout
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[AgentRecord | None, float]] = OrderedDict()
        # Revocations made here, kept apart from the cache so they apply at once to any registration they
        # follow, whichever replica made it.
        self._revoked: OrderedDict[str, dt.datetime] = OrderedDict()

    def __len__(self) -> int:
        """Agents cached (registered, revoked or unknown)."""
        return len(self._entries)

    def record(self, agent: AgentRecord) -> None:
        key = agent.entra_app_id.lower()
        self._remember(key, (agent, self._clock()))
        revoked_at = self._revoked.get(key)
        if revoked_at is not None and revoked_at < agent.registered_at:
            del self._revoked[key]

    def revoke(self, entra_app_id: str, at: dt.datetime) -> None:
        """Revoke every registration of the agent made at or before ``at`` (the latest refusal)."""
        key = entra_app_id.lower()
        self._revoked[key] = max(at, self._revoked.get(key, at))
        self._revoked.move_to_end(key)
        if len(self._revoked) > self._max_entries:
            # The revocation is also stored (the audit writer's row); the agent's cached registration goes
            # too, so the next lookup reads the stored one, revoked.
            oldest, _ = self._revoked.popitem(last=False)
            self._entries.pop(oldest, None)

    def _remember(self, key: str, entry: tuple[AgentRecord | None, float]) -> None:
        entries = self._entries
        entries[key] = entry
        entries.move_to_end(key)
        if len(entries) > self._max_entries:
            entries.popitem(last=False)

    async def lookup(self, entra_app_id: str, now: dt.datetime) -> AgentRecord | None:
        """The agent's newest registration (local or stored) with any revocation applied; ``None`` if it
        never registered. Whether it is active at ``now`` is the caller's question."""
        key = entra_app_id.lower()
        cached = self._entries.get(key)
        checked = self._clock()
        if cached is not None:
            self._entries.move_to_end(key)
            record, checked_at = cached
            view = None if record is None else self._revoked_view(key, record)
            # Only an active registration is trusted for long: a missing, expired or revoked one may have
            # been renewed through another replica since.
            trusted_for = self._ttl if view is not None and view.active(now) else self._miss_ttl
            if checked - checked_at < trusted_for:
                return view
        local = cached[0] if cached is not None else None
        try:
            stored = await asyncio.wait_for(self._store.load(key), self._store_timeout)
        except (StoreUnavailableError, asyncio.TimeoutError) as exc:
            if local is not None:
                # The store is down: this process's own registration (or revocation) still stands.
                return self._revoked_view(key, local)
            log.warning("agent lookup failed", extra={"agent_entra_app_id": key, "error": type(exc).__name__})
            raise ApiError(
                503, "database_unavailable", "the agent registry could not be read; retry shortly"
            ) from None
        # The newer registration wins: the local one may be unwritten yet, or another replica's may be newer.
        best = local
        if stored is not None and (best is None or stored.registered_at >= best.registered_at):
            best = stored
        self._remember(key, (best, checked))
        return self._revoked_view(key, best) if best is not None else None

    def _revoked_view(self, key: str, record: AgentRecord) -> AgentRecord:
        revoked_at = self._revoked.get(key)
        if record.revoked_at is None and revoked_at is not None and record.registered_at <= revoked_at:
            return record._replace(revoked_at=revoked_at)
        return record


def dispatchable(agent_id: str, agent: AgentRecord | None, now: float) -> AgentRecord:
    """The agent, if a session may be dispatched to it: registered, not revoked, its token unexpired;
    else a 404 saying which of these failed."""
    if agent is None:
        detail = f"agent {agent_id} has not registered: start the agent (it registers through the SDK) first"
    elif agent.revoked_at is not None:
        detail = (
            f"agent {agent_id}'s registration was revoked at {iso(agent.revoked_at.timestamp())}: its last"
            " registration was refused (the Entra app role was removed); restore the role and restart the"
            " agent"
        )
    elif agent.expires_at.timestamp() <= now:
        detail = (
            f"agent {agent_id}'s registration expired at {iso(agent.expires_at.timestamp())}: the agent"
            " stopped renewing; is it running?"
        )
    else:
        return agent
    raise ApiError(404, "agent_not_registered", detail, "agent_entra_app_id")
