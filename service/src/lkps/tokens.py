"""LiveKit access tokens, minted fast: a prepared claim set in LiveKit's exact shape, signed HS256 with PyJWT.

``livekit.api.AccessToken.to_jwt`` costs more than the whole HTTP stack (dataclass and protobuf conversion on
every call); the claims here are the same JSON it produces (tests verify every token with livekit-api's
``TokenVerifier``), built from plain dicts. ``jwt.encode`` itself re-validates the key (PEM/SSH/DER probes)
and re-serialises the constant header on every call, which is most of its ~75 µs: the key is checked once
with PyJWT's own ``HMACAlgorithm``, the header encoded once and the claims serialised with orjson. Each
signature copies an HMAC keyed once (``hmac.HMAC.copy``): a fresh ``hmac.new`` per token sets up OpenSSL's
digest and key again, more than half of what signing costs.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from jwt.algorithms import HMACAlgorithm

# Grants an agent worker needs: register with the server (``agent``) and act in the rooms it is dispatched to.
AGENT_VIDEO_GRANTS: Mapping[str, bool] = {
    "agent": True,
    "canPublish": True,
    "canSubscribe": True,
    "canPublishData": True,
}


_TO_URL = bytes.maketrans(b"+/", b"-_")


def base64url(data: bytes) -> bytes:
    """``data`` as an unpadded base64url segment: what PyJWT's ``base64url_encode`` gives, in fewer steps."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=")


# The JWS header PyJWT writes for HS256 (compact JSON, keys sorted), encoded once.
_HEADER = base64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


class RoomConfig(NamedTuple):
    """The room a participant token creates on first join, with the agent it dispatches. (A named tuple: one
    is made per session start, at a fraction of a frozen dataclass's cost.)"""

    agent_name: str
    agent_metadata: str
    max_participants: int = 2
    departure_timeout: int = 30
    sync_streams: bool = True

    def claim(self) -> dict[str, Any]:
        # Key names and omissions follow protobuf's JSON mapping of RoomConfiguration (MessageToDict).
        return {
            "departureTimeout": self.departure_timeout,
            "maxParticipants": self.max_participants,
            "syncStreams": self.sync_streams,
            "agents": [{"agentName": self.agent_name, "metadata": self.agent_metadata}],
        }


class TokenMinter:
    """Signs LiveKit JWTs with the server's API key (``iss``) and secret; nothing else holds them."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self._api_key = api_key
        # prepare_key refuses secrets shaped like asymmetric keys, as jwt.encode would on every call
        key = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(api_secret.encode())
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def _sign(self, claims: dict[str, Any], now: int, ttl: int) -> str:
        claims["iss"] = self._api_key
        claims["nbf"] = now
        claims["exp"] = now + ttl
        payload = base64url(orjson.dumps(claims))
        signing_input = _HEADER + b"." + payload
        mac = self._mac.copy()
        mac.update(signing_input)
        signature = base64url(mac.digest())
        return (signing_input + b"." + signature).decode("ascii")

    def agent_token(self, *, identity: str, name: str, now: int, ttl: int) -> str:
        """A worker token: lets the holder register an agent worker; it joins no room by itself."""
        claims: dict[str, Any] = {
            "video": dict(AGENT_VIDEO_GRANTS),
            "name": name,
            "kind": "agent",
            "sub": identity,
        }
        return self._sign(claims, now, ttl)

    def participant_token(
        self,
        *,
        identity: str,
        name: str,
        room: str,
        room_config: RoomConfig,
        metadata: Mapping[str, Any] | None,
        now: int,
        ttl: int,
    ) -> str:
        """A client token for one room: join, publish, subscribe, data; the room dispatches the agent."""
        claims: dict[str, Any] = {
            "video": {
                "roomJoin": True,
                "room": room,
                "canPublish": True,
                "canSubscribe": True,
                "canPublishData": True,
            },
            "roomConfig": room_config.claim(),
            "sub": identity,
        }
        if name:
            claims["name"] = name
        if metadata:
            claims["metadata"] = orjson.dumps(metadata).decode()
        return self._sign(claims, now, ttl)
