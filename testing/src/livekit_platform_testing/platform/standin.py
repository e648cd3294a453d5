"""A LiveKit Platform Service stand-in for agent tests: ``POST /api/agent/register`` only.

It checks the Entra bearer against an ``EntraStandIn`` (audience = the platform's app ID, the
``Agent.Register`` app role) and mints a LiveKit agent token with the ``LiveKitStandIn``'s key, as the real
service does; the answer names the agent's LiveKit ``agent_name``: the caller's app ID as a lower-case GUID.
Tests can switch it to ``unavailable`` (503 with ``Retry-After``) or ``refuse`` (403, as after a revoked
role) at any time. End-to-end tests run the real service (``lkps``); this is for an agent repo's own
fast tests.
"""

from __future__ import annotations

from aiohttp import web

from ..entra import EntraStandIn
from ..livekit import LiveKitStandIn
from ..server import StandInServer
from .models import PlatformBackend
from .records import Mode, Registration
from .urls import build_app


class PlatformStandIn(StandInServer):
    """Register endpoint of the platform service; ``url`` is what ``LIVEKIT_PLATFORM_URL`` points at."""

    def __init__(
        self,
        entra: EntraStandIn,
        livekit: LiveKitStandIn,
        *,
        platform_app_id: str,
        token_ttl: int = 3600,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self._entra = entra
        self.backend = PlatformBackend(livekit, platform_app_id=platform_app_id, token_ttl=token_ttl)
        """The mode, token lifetime and register calls seen; the attributes below read and set them."""

    @property
    def platform_app_id(self) -> str:
        return self.backend.platform_app_id

    @property
    def mode(self) -> Mode:
        """``up``, ``unavailable`` (503 with ``Retry-After``) or ``refuse`` (403), from the next call on."""
        return self.backend.mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self.backend.mode = mode

    @property
    def token_ttl(self) -> int:
        """Lifetime in seconds of the LiveKit tokens minted from now on."""
        return self.backend.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: int) -> None:
        self.backend.token_ttl = seconds

    @property
    def scope(self) -> str:
        """The Entra scope an agent asks for (``LIVEKIT_PLATFORM_SCOPE``)."""
        return f"api://{self.platform_app_id}/.default"

    @property
    def registrations(self) -> list[Registration]:
        return self.backend.registrations

    @property
    def registered_app_ids(self) -> list[str]:
        """App IDs of the agents that got a token, in order."""
        return [r.app_id for r in self.registrations if r.status == 200 and r.app_id]

    @property
    def minted(self) -> list[str]:
        """sha256 fingerprints of the tokens minted so far, oldest first."""
        return [r.fingerprint for r in self.registrations if r.fingerprint]

    def session_token(self, *, room: str, agent_name: str, metadata: str = "", identity: str = "") -> str:
        """A caller's token whose room config dispatches ``agent_name``, as ``session/start`` mints it."""
        return self.backend.session_token(
            room=room, agent_name=agent_name, metadata=metadata, identity=identity
        )

    def build_app(self) -> web.Application:
        return build_app(self.backend, self._entra)
