"""The binding: a worker may register only under the agent name its token was issued to (LiveKit takes the
name from ``RegisterWorkerRequest`` and compares it with nothing)."""

from __future__ import annotations

import uuid

from .agent_tokens import AgentClaims


def binding_refusal(claims: AgentClaims, announced: str) -> str | None:
    """Why a worker holding ``claims`` may not register as ``announced`` (a websocket close reason: at most
    123 bytes); ``None`` when it may. Names are
    agents' Entra app IDs: equal as GUIDs in any spelling (the relay registers upstream with the token's)."""
    if _same(announced, claims.agent_name):
        return None
    return f"agent name is not this token's agent ({claims.agent_name}): register as your own agent"


def _same(announced: str, agent_name: str) -> bool:
    try:
        return uuid.UUID(announced) == uuid.UUID(agent_name)
    except ValueError:
        return announced == agent_name
