"""Agent (worker) tokens as the relay verifies them: signed HS256 with the platform's agent key (``iss``: its
key ID, ``LKPS_AGENT_TOKEN_KEY_ID``), which LiveKit does not know, so they are good only here."""

from __future__ import annotations

from typing import Any, NamedTuple

import jwt

_GUID_LENGTH = 36


class AgentTokenError(Exception):
    """The token is not a valid agent token; ``reason`` says why (it never contains the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AgentClaims(NamedTuple):
    """What an agent token says: the worker identity it was issued as, its agent (name), the registration that
    issued it, and its lifetime (seconds since the epoch)."""

    identity: str
    agent_name: str
    registration_id: str
    issued_at: int
    expires_at: int


def registration_id(identity: str, agent_name: str) -> str:
    """The registration in a worker identity ``agent-<agent>-<registration>`` (``lkps.api.agents``); "" if the
    identity is not of that shape."""
    prefix = f"agent-{agent_name}-"
    if identity.startswith(prefix) and len(identity) == len(prefix) + _GUID_LENGTH:
        return identity[len(prefix) :]
    return ""


class AgentTokenVerifier:
    def __init__(self, key_id: str, secret: str) -> None:
        self._key_id = key_id
        self._secret = secret

    def verify(self, token: str, now: float) -> AgentClaims:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key=self._secret,
                algorithms=["HS256"],
                issuer=self._key_id,
                options={"require": ["exp", "nbf", "sub", "iss"], "verify_exp": False, "verify_nbf": False},
            )
        except jwt.InvalidIssuerError:
            raise AgentTokenError(
                f"the token's key (iss) is not the platform's agent key {self._key_id!r}: use the token"
                " POST /api/agent/register issued"
            ) from None
        except jwt.InvalidSignatureError:
            raise AgentTokenError(
                "the token's signature does not verify with the platform's agent key: use the token"
                " POST /api/agent/register issued"
            ) from None
        except jwt.PyJWTError as exc:
            raise AgentTokenError(f"the token is not a valid agent token ({type(exc).__name__})") from None
        video = payload.get("video")
        if not isinstance(video, dict) or video.get("agent") is not True:
            raise AgentTokenError("the token has no agent grant: it is not an agent token")
        name, identity = payload.get("name"), payload.get("sub")
        if not isinstance(name, str) or not isinstance(identity, str) or not name:
            raise AgentTokenError("the token names no agent: it is not an agent token")
        registration = registration_id(identity, name)
        if not registration:
            raise AgentTokenError("the token's identity is not an agent worker identity")
        issued_at, expires_at = payload["nbf"], payload["exp"]
        if not isinstance(issued_at, int) or not isinstance(expires_at, int):
            raise AgentTokenError("the token's nbf and exp must be whole seconds")
        if now < issued_at - 60:
            raise AgentTokenError("the token is not valid yet (nbf): check the clocks")
        if now >= expires_at:
            raise AgentTokenError("the token has expired: the agent must renew it (it re-registers)")
        return AgentClaims(identity, name, registration, issued_at, expires_at)
