"""The worker connections this replica relays, by agent: what the monitor checks and closes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from .agent_tokens import AgentClaims

# Close codes the relay ends a worker's connection with (RFC 6455 §7.4).
POLICY_VIOLATION = 1008  # refused or cut off: revoked, expired, wrong agent name
INTERNAL_ERROR = 1011  # LiveKit could not be reached
SERVICE_RESTART = 1012  # LiveKit or this replica is going away: reconnect


@dataclass(eq=False)
class RelayConnection:
    """One worker's connection: who it is (its token's claims) and how to end it."""

    id: str
    claims: AgentClaims
    close: Callable[[int, str], Awaitable[None]]
    worker_id: str = ""
    closing: bool = field(default=False)


class Connections:
    def __init__(self) -> None:
        self._by_id: dict[str, RelayConnection] = {}

    def add(self, connection: RelayConnection) -> None:
        self._by_id[connection.id] = connection

    def remove(self, connection: RelayConnection) -> None:
        self._by_id.pop(connection.id, None)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[RelayConnection]:
        return iter(list(self._by_id.values()))

    def agents(self) -> set[str]:
        return {c.claims.agent_name for c in self._by_id.values()}
