"""A LiveKit Platform Service stand-in for agent tests: ``POST /api/agent/register`` only.

It checks the Entra bearer against an ``EntraStandIn`` (audience = the platform's app ID, the
``Agent.Register`` app role) and mints a LiveKit agent token with the ``LiveKitStandIn``'s key, as the real
service does. Tests can switch it to ``unavailable`` (503 with ``Retry-After``) or ``refuse`` (403, as after a
revoked role) at any time. End-to-end tests run the real service (``lkps``); this is for an agent repo's own
fast tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from aiohttp import web
from livekit import api

from ._server import StandInServer, json_response
from .entra import EntraStandIn
from .livekit_server import LiveKitStandIn

REGISTER_ROLE = "Agent.Register"

Mode = Literal["up", "unavailable", "refuse"]


@dataclass(frozen=True)
class Registration:
    """One register call as the stand-in saw it (a fingerprint of the minted token, never the token)."""

    app_id: str | None
    status: int
    enforce_client_authz: bool | None
    fingerprint: str | None
    mode: Mode


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
        self._livekit = livekit
        self.platform_app_id = platform_app_id
        self.token_ttl = token_ttl
        self.mode: Mode = "up"
        self._registrations: list[Registration] = []

    @property
    def scope(self) -> str:
        """The Entra scope an agent asks for (``LIVEKIT_PLATFORM_SCOPE``)."""
        return f"api://{self.platform_app_id}/.default"

    @property
    def registrations(self) -> list[Registration]:
        with self._lock:
            return list(self._registrations)

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
        return (
            api.AccessToken(self._livekit.api_key, self._livekit.api_secret)
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

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/agent/register", self._register)
        return app

    def _record(self, registration: Registration) -> None:
        with self._lock:
            self._registrations.append(registration)

    async def _register(self, request: web.Request) -> web.Response:
        mode = self.mode
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self._record(Registration(None, 401, None, None, mode))
            return json_response({"error": "unauthorized", "detail": "missing bearer token"}, status=401)
        try:
            # verification fetches the JWKS with a blocking client: keep it off the server loop
            claims: dict[str, Any] = await asyncio.to_thread(
                self._entra.verify, header.removeprefix("Bearer "), audience=self.platform_app_id
            )
        except jwt.PyJWTError as exc:
            self._record(Registration(None, 401, None, None, mode))
            detail = f"invalid Entra token: {type(exc).__name__}"
            return json_response({"error": "unauthorized", "detail": detail}, status=401)
        app_id = str(claims.get("azp") or claims.get("appid"))
        try:
            body = await request.json()
        except ValueError:
            body = {}
        config = body.get("service_config") if isinstance(body, dict) else None
        enforce = config.get("enforce_client_authz") if isinstance(config, dict) else None
        if mode == "unavailable":
            self._record(Registration(app_id, 503, enforce, None, mode))
            return json_response(
                {"error": "unavailable", "detail": "maintenance"}, status=503, headers={"Retry-After": "1"}
            )
        if mode == "refuse" or REGISTER_ROLE not in claims.get("roles", []):
            self._record(Registration(app_id, 403, enforce, None, mode))
            detail = f"app {app_id} lacks the {REGISTER_ROLE} role"
            return json_response({"error": "forbidden", "detail": detail}, status=403)
        token = (
            api.AccessToken(self._livekit.api_key, self._livekit.api_secret)
            .with_identity(f"agent-{app_id}")
            .with_grants(api.VideoGrants(agent=True))
            .with_ttl(dt.timedelta(seconds=self.token_ttl))
            .to_jwt()
        )
        self._record(Registration(app_id, 200, enforce, hashlib.sha256(token.encode()).hexdigest(), mode))
        return json_response(
            {"livekit_token": token, "livekit_url": self._livekit.ws_url, "expires_in": self.token_ttl}
        )
