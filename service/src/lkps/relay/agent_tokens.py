"""Agent (worker) tokens as the relay verifies them: signed HS256 with the platform's agent key (``iss``: its
key ID, ``LKPS_AGENT_TOKEN_KEY_ID``), which LiveKit does not know, so they are good only here."""

from __future__ import annotations

from typing import Any, NamedTuple

import jwt

_GUID_LENGTH = 36


class AgentTokenError(Exception):
    """The token is not a valid agent token: ``detail`` says why and what to do (it never contains the
    token); ``reason`` is the refusal's reason code (``lkps_refusals_total{route="/agent"}``), one of
    :data:`REASONS`."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


# Why the relay refuses a worker connection: the refusal log's ``reason`` and the metric's label, never
# anything the worker sent. Agent-token reasons here; ``lkps.relay.socket`` adds revoked and wrong-name.
MISSING = "agent_token_missing"
WRONG_KEY = "agent_token_wrong_key"
SIGNATURE = "agent_token_signature"
INVALID = "agent_token_invalid"
NOT_YET_VALID = "agent_token_not_yet_valid"
EXPIRED = "agent_token_expired"
REVOKED = "agent_revoked"
NAME_MISMATCH = "agent_name_mismatch"
REASONS = frozenset({MISSING, WRONG_KEY, SIGNATURE, INVALID, NOT_YET_VALID, EXPIRED, REVOKED, NAME_MISMATCH})


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
                " POST /api/agent/register issued",
                reason=WRONG_KEY,
            ) from None
        except jwt.InvalidSignatureError:
            raise AgentTokenError(
                "the token's signature does not verify with the platform's agent key: use the token"
                " POST /api/agent/register issued",
                reason=SIGNATURE,
            ) from None
        except jwt.PyJWTError as exc:
            raise AgentTokenError(
                f"the token is not a valid agent token ({type(exc).__name__})", reason=INVALID
            ) from None
        video = payload.get("video")
        if not isinstance(video, dict) or video.get("agent") is not True:
            raise AgentTokenError("the token has no agent grant: it is not an agent token", reason=INVALID)
        name, identity = payload.get("name"), payload.get("sub")
        if not isinstance(name, str) or not isinstance(identity, str) or not name:
            raise AgentTokenError("the token names no agent: it is not an agent token", reason=INVALID)
        registration = registration_id(identity, name)
        if not registration:
            raise AgentTokenError("the token's identity is not an agent worker identity", reason=INVALID)
        issued_at, expires_at = payload["nbf"], payload["exp"]
        if not isinstance(issued_at, int) or not isinstance(expires_at, int):
            raise AgentTokenError("the token's nbf and exp must be whole seconds", reason=INVALID)
        if now < issued_at - 60:
            raise AgentTokenError("the token is not valid yet (nbf): check the clocks", reason=NOT_YET_VALID)
        if now >= expires_at:
            raise AgentTokenError(
                "the token has expired: the agent must renew it (it re-registers)", reason=EXPIRED
            )
        return AgentClaims(identity, name, registration, issued_at, expires_at)
