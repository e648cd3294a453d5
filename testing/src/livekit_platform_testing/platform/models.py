"""The platform stand-in's backend: its mode, the token lifetime, the register calls seen, and token minting
with the LiveKit stand-in's key, as the real service mints them."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid

from livekit import api

from ..livekit import LiveKitStandIn
from .records import Mode, Registration


def canonical_agent_name(app_id: str) -> str:
    """The platform's LiveKit agent name for an identity: its app ID as a lower-case GUID (as is, if it is
    no GUID)."""
    try:
        return str(uuid.UUID(app_id))
    except ValueError:
        return app_id


class PlatformBackend:
    """Thread-safe: tests switch ``mode`` and ``token_ttl`` while agents call in."""

    def __init__(self, livekit: LiveKitStandIn, *, platform_app_id: str, token_ttl: int) -> None:
        self.livekit = livekit
        self.platform_app_id = platform_app_id
        self.token_ttl = token_ttl
        self.mode: Mode = "up"
        self._lock = threading.Lock()
        self._registrations: list[Registration] = []

    @property
    def registrations(self) -> list[Registration]:
        with self._lock:
            return list(self._registrations)

    def record(self, registration: Registration) -> None:
        with self._lock:
            self._registrations.append(registration)

    def agent_token(self, app_id: str) -> tuple[str, str]:
        """A LiveKit worker token for the agent (``video.agent``, ``token_ttl``) and its sha256 hash."""
        token = (
            api.AccessToken(self.livekit.api_key, self.livekit.api_secret)
            .with_identity(f"agent-{app_id}")
            .with_grants(api.VideoGrants(agent=True))
            .with_ttl(dt.timedelta(seconds=self.token_ttl))
            .to_jwt()
        )
        return token, hashlib.sha256(token.encode()).hexdigest()

    def session_token(self, *, room: str, agent_name: str, metadata: str = "", identity: str = "") -> str:
        """A caller's token whose room config dispatches ``agent_name``, as ``session/start`` mints it: an app
        ID is dispatched by its canonical name (the lower-case GUID), the name its worker announces."""
        agent_name = canonical_agent_name(agent_name)
        return (
            api.AccessToken(self.livekit.api_key, self.livekit.api_secret)
            .with_identity(identity or f"caller-{room}")
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .with_room_config(
                api.RoomConfiguration(
                    max_participants=2,
                    departure_timeout=30,
                    agents=[api.RoomAgentDispatch(agent_name=agent_name, metadata=metadata)],
                )
            )
            .to_jwt()
        )
