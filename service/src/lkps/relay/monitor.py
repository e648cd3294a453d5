"""Live revocation and expiry: every ``LKPS_RELAY_CHECK_INTERVAL`` one query reads the connected agents' rows
(whichever replica registered or revoked them) and the workers of revoked or expired agents are closed.

A worker is cut off when its agent was revoked after its token was issued (``lkps agents revoke``, or a
registration refused for a missing app role), or when the agent's latest token (a renewal extends it, with no
reconnect) has expired. Bound: the interval plus one query, after the revocation's row is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping

from ..storage.agent_status import AgentStatus
from .connections import POLICY_VIOLATION, Connections, RelayConnection

log = logging.getLogger(__name__)

Statuses = Callable[[Collection[str]], Awaitable[Mapping[str, AgentStatus]]]


def cutoff_reason(connection: RelayConnection, status: AgentStatus | None, now: float) -> str | None:
    """Why the connection must end now, or ``None``."""
    claims = connection.claims
    if (
        status is not None
        and status.revoked_at is not None
        and status.revoked_at.timestamp() >= claims.issued_at
    ):
        return "agent revoked: register again (the platform asks Entra whether the agent may)"
    expires = float(claims.expires_at)
    if status is not None and status.token_expires_at is not None:
        expires = max(expires, status.token_expires_at.timestamp())
    if now >= expires:
        return "agent token expired without renewal: register again"
    return None


class LivenessMonitor:
    def __init__(
        self,
        connections: Connections,
        statuses: Statuses,
        *,
        interval: float,
        clock: Callable[[], float],
    ) -> None:
        self._connections = connections
        self._statuses = statuses
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
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

    async def check(self) -> int:
        """One round: close what must end; the number closed."""
        if not len(self._connections):
            return 0
        statuses = await self._statuses(self._connections.agents())
        now = self._clock()
        ending = []
        for connection in self._connections:
            reason = cutoff_reason(connection, statuses.get(connection.claims.agent_name), now)
            if reason is not None and not connection.closing:
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
