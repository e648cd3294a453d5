"""Live revocation and expiry: every ``LKPS_RELAY_CHECK_INTERVAL`` one query reads what the connected workers'
agents need (whichever replica registered or revoked them) and the workers of revoked or expired agents are
closed.

A worker is cut off when its agent was revoked after its token was issued (``lkps agents revoke``, or a
registration refused for a missing app role), or when the agent's latest token (a renewal extends it, with no
reconnect) has expired. Bound: the interval plus one query, after the revocation's row is written.

The query stays small however many workers are connected: it returns the agents revoked since the oldest
connected token was issued, and the rows of the agents whose last known expiry has passed (the monitor
remembers each agent's latest expiry, so an agent is read again only once that has passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping

from ..storage.agent_status import AgentStatus
from .connections import POLICY_VIOLATION, Connections, RelayConnection

log = logging.getLogger(__name__)

Statuses = Callable[[Collection[str]], Awaitable[Mapping[str, AgentStatus]]]
Candidates = Callable[[dt.datetime, Collection[str]], Awaitable[Mapping[str, AgentStatus]]]


def cutoff_reason(
    connection: RelayConnection, status: AgentStatus | None, expires: float, now: float
) -> str | None:
    """Why the connection must end now, or ``None``; ``expires``: its agent's latest known token expiry."""
    revoked_at = status.revoked_at if status is not None else None
    if revoked_at is not None and revoked_at.timestamp() >= connection.claims.issued_at:
        return "agent revoked: register again (the platform asks Entra whether the agent may)"
    if now >= expires:
        return "agent token expired without renewal: register again"
    return None


class LivenessMonitor:
    def __init__(
        self,
        connections: Connections,
        candidates: Candidates,
        *,
        interval: float,
        clock: Callable[[], float],
    ) -> None:
        self._connections = connections
        self._candidates = candidates
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        # each connected agent's latest token expiry as last read (or its workers' own tokens' expiry)
        self._expires: dict[str, float] = {}
        self.closed = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lkps-relay-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: keep the connections, try again next round
                log.warning("relay check failed; retrying", extra={"error": type(exc).__name__})

    def _expiry(self, connection: RelayConnection) -> float:
        agent = connection.claims.agent_name
        return max(float(connection.claims.expires_at), self._expires.get(agent, 0.0))

    async def check(self) -> int:
        """One round: close what must end; the number closed."""
        connections = [c for c in self._connections if not c.closing]
        if not connections:
            self._expires.clear()
            return 0
        now = self._clock()
        oldest = min(c.claims.issued_at for c in connections)
        expiring = {c.claims.agent_name for c in connections if self._expiry(c) <= now}
        since = dt.datetime.fromtimestamp(oldest, dt.timezone.utc)
        statuses = await self._candidates(since, expiring)
        connected = {c.claims.agent_name for c in connections}
        self._expires = {agent: expires for agent, expires in self._expires.items() if agent in connected}
        for agent, status in statuses.items():
            if status.token_expires_at is not None and agent in connected:
                self._expires[agent] = max(self._expires.get(agent, 0.0), status.token_expires_at.timestamp())
        now = self._clock()
        ending = []
        for connection in connections:
            reason = cutoff_reason(
                connection, statuses.get(connection.claims.agent_name), self._expiry(connection), now
            )
            if reason is None:
                continue
            connection.closing = True
            log.warning(
                "closing worker: %s",
                reason.split(":", 1)[0],
                extra={
                    "agent_entra_app_id": connection.claims.agent_name,
                    "worker_identity": connection.claims.identity,
                    "worker_id": connection.worker_id,
                },
            )
            ending.append(connection.close(POLICY_VIOLATION, reason))
        if ending:
            await asyncio.gather(*ending, return_exceptions=True)
        self.closed += len(ending)
        return len(ending)
