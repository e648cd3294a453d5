"""LiveKit access tokens: livekit-api's claim set, signed HS256 with the API secret at the service's clock.

``AccessToken.to_jwt`` reads the wall clock itself, while the audit row of a registration states exactly its
token's ``nbf`` and ``exp``: so the claims come from livekit-api (``AccessToken.claims``) and PyJWT signs them
with the times the service chose.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jwt
from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration


class RoomConfig(NamedTuple):
    """The room a participant token creates on first join, with the agent it dispatches."""

    agent_name: str
    agent_metadata: str  # the LiveKit job's metadata, as the agent receives it
    max_participants: int = 2
    departure_timeout: int = 30
    sync_streams: bool = True

    def message(self) -> RoomConfiguration:
        return RoomConfiguration(
            max_participants=self.max_participants,
            departure_timeout=self.departure_timeout,
            sync_streams=self.sync_streams,
            agents=[RoomAgentDispatch(agent_name=self.agent_name, metadata=self.agent_metadata)],
        )


class TokenMinter:
    """Signs LiveKit JWTs with the server's API key (``iss``) and secret; nothing else holds them."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self._api_key = api_key
        self._api_secret = api_secret

    def agent_token(self, *, identity: str, name: str, now: int, ttl: int) -> str:
        """A worker token: lets the holder register an agent worker (and act in the rooms it is dispatched
        to); it joins no room by itself."""
        token = (
            self._token(identity)
            .with_name(name)
            .with_kind("agent")
            .with_grants(
                api.VideoGrants(agent=True, can_publish=True, can_subscribe=True, can_publish_data=True)
            )
        )
        return self._sign(token, now, ttl)

    def participant_token(
        self,
        *,
        identity: str,
        name: str,
        room: str,
        room_config: RoomConfig,
        now: int,
        ttl: int,
        metadata: str | None = None,
    ) -> str:
        """A client token for one room: join, publish, subscribe, data; the room dispatches the agent."""
        token = self._token(identity).with_grants(
            api.VideoGrants(
                room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True
            )
        )
        token.with_room_config(room_config.message())
        if name:
            token.with_name(name)
        if metadata:
            token.with_metadata(metadata)
        return self._sign(token, now, ttl)

    def _token(self, identity: str) -> api.AccessToken:
        return api.AccessToken(self._api_key, self._api_secret).with_identity(identity)

    def _sign(self, token: api.AccessToken, now: int, ttl: int) -> str:
        claims: dict[str, Any] = token.claims.asdict()
        claims.update(sub=token.identity, iss=self._api_key, nbf=now, exp=now + ttl)
        return jwt.encode(claims, self._api_secret, algorithm="HS256")
