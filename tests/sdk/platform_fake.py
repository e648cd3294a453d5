"""A small LiveKit Platform Service fake for the SDK tests: validates the Entra bearer, mints agent tokens.

It stands in for ``service/`` until the real one lands (the end-to-end suite runs the SDK against that).
Modes: ``up`` (mint), ``unavailable`` (503 with Retry-After), ``refuse`` (403).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from livekit import api

from livekit_platform_sdk.testing._server import StandInServer, json_response
from livekit_platform_sdk.testing.entra import EntraStandIn
from livekit_platform_sdk.testing.livekit_server import LiveKitStandIn

REGISTER_ROLE = "Agent.Register"


@dataclass(frozen=True)
class Registration:
    """One register call as the fake saw it (fingerprint of the minted token, never the token)."""

    app_id: str | None
    status: int
    enforce_client_authz: bool | None
    fingerprint: str | None
    mode: str


class PlatformFake(StandInServer):
    def __init__(
        self, entra: EntraStandIn, livekit: LiveKitStandIn, *, platform_app_id: str, token_ttl: int = 3600
    ) -> None:
        super().__init__()
        self._entra = entra
        self._livekit = livekit
        self.platform_app_id = platform_app_id
        self.token_ttl = token_ttl
        self.mode = "up"
        self._registrations: list[Registration] = []
        self._records_lock = threading.Lock()

    @property
    def registrations(self) -> list[Registration]:
        with self._records_lock:
            return list(self._registrations)

    @property
    def minted(self) -> list[str]:
        """Fingerprints of the tokens minted so far, oldest first."""
        return [r.fingerprint for r in self.registrations if r.fingerprint]

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/agent/register", self._register)
        return app

    def _record(self, registration: Registration) -> None:
        with self._records_lock:
            self._registrations.append(registration)

    async def _register(self, request: web.Request) -> web.Response:
        mode = self.mode
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self._record(Registration(None, 401, None, None, mode))
            return json_response({"error": "missing bearer token"}, status=401)
        try:
            claims: dict[str, Any] = await asyncio.to_thread(
                self._entra.verify, header.removeprefix("Bearer "), audience=self.platform_app_id
            )
        except jwt.PyJWTError as exc:
            self._record(Registration(None, 401, None, None, mode))
            return json_response({"error": f"invalid Entra token: {type(exc).__name__}"}, status=401)
        app_id = str(claims.get("azp") or claims.get("appid"))
        body = await request.json()
        enforce = body.get("service_config", {}).get("enforce_client_authz")
        if mode == "unavailable":
            self._record(Registration(app_id, 503, enforce, None, mode))
            return json_response({"error": "maintenance"}, status=503, headers={"Retry-After": "1"})
        if mode == "refuse" or REGISTER_ROLE not in claims.get("roles", []):
            self._record(Registration(app_id, 403, enforce, None, mode))
            return json_response({"error": f"app {app_id} lacks the {REGISTER_ROLE} role"}, status=403)
        token = (
            api.AccessToken(self._livekit.api_key, self._livekit.api_secret)
            .with_identity(f"agent-{app_id}")
            .with_grants(api.VideoGrants(agent=True))
            .with_ttl(dt.timedelta(seconds=self.token_ttl))
            .to_jwt()
        )
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        self._record(Registration(app_id, 200, enforce, fingerprint, mode))
        return json_response(
            {"livekit_token": token, "livekit_url": self._livekit.ws_url, "expires_in": self.token_ttl}
        )
