"""A header-injecting gateway in front of the platform service, as the spec's upstream gateway (Ocelot) works.

It validates the caller's Entra access token (signature against the tenant's JWKS, issuer, audience, expiry,
the route's app role), drops any identity headers the caller sent, injects the validated identity as headers
and forwards the request. The service runs with ``LKPS_IDENTITY_MODE=gateway`` behind it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from livekit_platform_testing.server import StandInServer, json_response

log = logging.getLogger(__name__)

# What the service reads in gateway mode (its defaults); anything a caller sends under these names is dropped.
CLIENT_ID_HEADER = "client-id"
USER_ID_HEADER = "user-id"
EMAIL_HEADER = "x-user-email"
PROFILE_HEADERS = ("user-profile", "x-user-profile")
# The service's LKPS_GATEWAY_SECRET_HEADER: the shared secret that proves a request came through the gateway.
SECRET_HEADER = "x-gateway-secret"  # noqa: S105 (a header's name)
IDENTITY_HEADERS = frozenset(
    {CLIENT_ID_HEADER, USER_ID_HEADER, EMAIL_HEADER, *PROFILE_HEADERS, SECRET_HEADER}
)
# Hop-by-hop and recomputed headers are never forwarded.
_NOT_FORWARDED = frozenset({"host", "content-length", "connection", "transfer-encoding", "authorization"})


class Gateway(StandInServer):
    """Forwards ``/api/*`` to ``upstream`` once the bearer token is valid for ``audiences``, with the
    ``shared_secret`` the service checks (``LKPS_GATEWAY_SHARED_SECRET``).

    ``route_roles`` maps a path to the app role its token must carry (Ocelot's RouteClaimsRequirement);
    paths not listed need a valid token only.
    """

    def __init__(
        self,
        upstream: str,
        *,
        jwks_uri: str,
        issuers: Sequence[str],
        audiences: Sequence[str],
        route_roles: Mapping[str, str],
        ssl_context: ssl.SSLContext,
        shared_secret: str,
    ) -> None:
        super().__init__()
        self._shared_secret = shared_secret
        self.upstream = upstream.rstrip("/")
        self._jwks = jwt.PyJWKClient(jwks_uri, cache_keys=True, ssl_context=ssl_context)
        self._issuers = list(issuers)
        self._audiences = list(audiences)
        self._route_roles = dict(route_roles)
        self._session: aiohttp.ClientSession | None = None
        self.forwarded = 0
        self.rejected = 0

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{tail:.*}", self._forward)
        return app

    async def on_started(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def on_stopping(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        try:
            claims = await self._validate(request)
        except _RejectedError as exc:
            self.rejected += 1
            log.info("gateway refused %s %s: %s %s", request.method, request.path, exc.status, exc.detail)
            return json_response({"error": exc.error, "detail": exc.detail}, status=exc.status)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _NOT_FORWARDED and k.lower() not in IDENTITY_HEADERS
        }
        headers.update(identity_headers(claims))
        headers[SECRET_HEADER] = self._shared_secret
        assert self._session is not None
        body = await request.read()
        try:
            async with self._session.request(
                request.method, f"{self.upstream}{request.rel_url}", data=body, headers=headers
            ) as upstream:
                payload = await upstream.read()
                self.forwarded += 1
                log.info(
                    "gateway forwarded %s %s for client %s: %s",
                    request.method,
                    request.path,
                    headers.get(CLIENT_ID_HEADER),
                    upstream.status,
                )
                return web.Response(
                    status=upstream.status,
                    body=payload,
                    content_type=upstream.content_type,
                )
        except (aiohttp.ClientError, TimeoutError):
            return json_response(
                {"error": "bad_gateway", "detail": "the platform service did not answer; retry shortly"},
                status=502,
            )

    async def _validate(self, request: web.Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _RejectedError(401, "unauthorized", "send 'Authorization: Bearer <Entra access token>'")
        try:
            # PyJWKClient fetches with urllib: keep it off the event loop
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token.strip())
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                key.key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=self._issuers,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise _RejectedError(
                401, "unauthorized", f"the bearer token is invalid ({type(exc).__name__})"
            ) from None
        role = self._route_roles.get(request.path)
        roles = claims.get("roles")
        if role and (not isinstance(roles, list) or role not in roles):
            raise _RejectedError(403, "forbidden", f"the token has no '{role}' app role")
        return claims


def identity_headers(claims: Mapping[str, Any]) -> dict[str, str]:
    """The headers the service trusts in gateway mode, from validated claims (only those the token has)."""
    headers: dict[str, str] = {}
    client_id = claims.get("azp") or claims.get("appid")
    if isinstance(client_id, str):
        headers[CLIENT_ID_HEADER] = client_id
    if isinstance(claims.get("oid"), str):
        headers[USER_ID_HEADER] = claims["oid"]
    email = next(
        (v for v in (claims.get(n) for n in ("email", "preferred_username", "upn")) if isinstance(v, str)),
        None,
    )
    if email:
        headers[EMAIL_HEADER] = email
    profile = {
        key: claims[claim]
        for key, claim in (
            ("displayName", "name"),
            ("firstName", "given_name"),
            ("lastName", "family_name"),
            ("cwid", "cwid"),
        )
        if isinstance(claims.get(claim), str)
    }
    if email:
        profile["email"] = email
    if profile:
        headers[PROFILE_HEADERS[0]] = base64.b64encode(json.dumps(profile).encode()).decode("ascii")
    return headers


class _RejectedError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
