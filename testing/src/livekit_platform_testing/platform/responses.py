"""The platform stand-in on the wire: ``POST /api/agent/register``, answered as the real service does."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
from aiohttp import web

from ..entra import EntraStandIn
from ..server import json_response
from .models import PlatformBackend, canonical_agent_name
from .records import Registration
from .roles import REGISTER_ROLE


class PlatformResponses:
    """Checks the Entra bearer with the Entra stand-in (audience: the platform app ID; ``Agent.Register``)."""

    def __init__(self, backend: PlatformBackend, entra: EntraStandIn) -> None:
        self._backend = backend
        self._entra = entra

    async def register(self, request: web.Request) -> web.Response:
        backend = self._backend
        mode = backend.mode
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            backend.record(Registration(None, 401, None, None, mode))
            return json_response({"error": "unauthorized", "detail": "missing bearer token"}, status=401)
        try:
            # verification fetches the JWKS with a blocking client: keep it off the server loop
            claims: dict[str, Any] = await asyncio.to_thread(
                self._entra.verify, header.removeprefix("Bearer "), audience=backend.platform_app_id
            )
        except jwt.PyJWTError as exc:
            backend.record(Registration(None, 401, None, None, mode))
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
            backend.record(Registration(app_id, 503, enforce, None, mode))
            return json_response(
                {"error": "unavailable", "detail": "maintenance"}, status=503, headers={"Retry-After": "1"}
            )
        if mode == "refuse" or REGISTER_ROLE not in claims.get("roles", []):
            backend.record(Registration(app_id, 403, enforce, None, mode))
            detail = f"app {app_id} lacks the {REGISTER_ROLE} role"
            return json_response({"error": "forbidden", "detail": detail}, status=403)
        token, fingerprint = backend.agent_token(app_id)
        backend.record(Registration(app_id, 200, enforce, fingerprint, mode))
        return json_response(
            {
                "livekit_token": token,
                "livekit_url": backend.livekit.ws_url,
                "expires_in": backend.token_ttl,
                "agent_name": canonical_agent_name(app_id),
            }
        )
