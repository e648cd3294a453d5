"""Identity mode ``entra``: the bearer token validated here against the tenant's OIDC metadata and JWKS, with
the endpoint's app role required."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from starlette.datastructures import Headers

from ..errors import ApiError
from ..settings import Settings
from .identity import Endpoint, Identity, MissingRoleError, text

log = logging.getLogger(__name__)


class EntraIdentity:
    """Validates the bearer token against the tenant's OIDC metadata and JWKS and requires an app role."""

    # A token naming a key the cache lacks triggers a refresh, at most this often (keys rotate rarely; the
    # limit stops a stream of forged kids from turning into a stream of JWKS fetches).
    MIN_REFRESH_INTERVAL = 10.0
    # Keys are refreshed in the background of a request once this old, so retired keys eventually drop out.
    MAX_KEY_AGE = 24 * 3600.0

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.entra_tenant_id is not None, "Settings validation requires a tenant in entra mode"
        self._metadata_url = (
            f"{settings.entra_authority}/{settings.entra_tenant_id}/v2.0/.well-known/openid-configuration"
        )
        self._audiences = list(settings.entra_audiences)
        self._issuers = list(settings.entra_issuers)
        self._roles: dict[Endpoint, str] = {
            "register": settings.entra_register_role,
            "session": settings.entra_session_role,
            "admin": settings.entra_admin_role,
        }
        self._cwid_claims = settings.entra_cwid_claims
        self._leeway = settings.entra_leeway
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._owns_http = http is None
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_uri: str | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        token = _bearer(headers)
        claims = await self._validate(token)
        client_id = text(claims.get("azp")) or text(claims.get("appid"))
        role = self._roles[endpoint]
        roles = claims.get("roles")
        if role and (not isinstance(roles, list) or role not in roles):
            # Only an application token (no delegated scopes) speaks for the app itself: a user signing in
            # through the agent's app registration must not be able to revoke the agent.
            raise MissingRoleError(role, client_id if "scp" not in claims else None)
        cwid = next((c for c in (text(claims.get(n)) for n in self._cwid_claims) if c), None)
        return Identity(
            client_id=client_id,
            user_id=text(claims.get("oid")),
            email=text(claims.get("email"))
            or text(claims.get("preferred_username"))
            or text(claims.get("upn")),
            display_name=text(claims.get("name")),
            cwid=cwid,
        )

    async def _validate(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized(
                "the bearer token is not a JWT: send an Entra access token", "not_a_jwt"
            ) from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _unauthorized(
                "the bearer token has no key ID (kid): send an Entra access token", "no_key_id"
            )
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=self._issuers,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the bearer token has expired: acquire a new one", "token_expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(
                "the bearer token is for another audience: request a token for the platform's scope",
                "wrong_audience",
            ) from None
        except jwt.InvalidIssuerError:
            raise _unauthorized(
                "the bearer token was issued by another tenant or authority", "wrong_issuer"
            ) from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(
                f"the bearer token is invalid ({type(exc).__name__})", "invalid_token"
            ) from None
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        stale = self._fetched_at is None or self._clock() - self._fetched_at > self.MAX_KEY_AGE
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            attempted = self._attempted_at
            may_refresh = attempted is None or self._clock() - attempted >= self.MIN_REFRESH_INTERVAL
            stale = self._fetched_at is None or self._clock() - self._fetched_at > self.MAX_KEY_AGE
            if (kid not in self._keys or stale) and may_refresh:
                self._attempted_at = self._clock()
                await self._refresh()
        key = self._keys.get(kid)
        if key is None and not self._keys:
            raise _keys_unavailable()
        if key is None:
            raise _unauthorized(
                "the bearer token is signed with a key this tenant does not publish", "unknown_key"
            )
        return key

    async def _refresh(self) -> None:
        try:
            if self._jwks_uri is None:
                meta = await self._get_json(self._metadata_url)
                jwks_uri = meta.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise ValueError("OpenID metadata has no jwks_uri")
                self._jwks_uri = jwks_uri
            jwks = await self._get_json(self._jwks_uri)
            keys: dict[str, jwt.PyJWK] = {}
            for jwk in jwks.get("keys", []):
                if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str) and jwk.get("kty") == "RSA":
                    keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256")
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning(
                "entra signing keys unavailable", extra={"url": self._metadata_url, "error": repr(exc)}
            )
            return
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("entra signing keys loaded", extra={"kids": sorted(keys)})

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._http.get(url)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not return a JSON object")
        return data

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def _bearer(headers: Headers) -> str:
    value = headers.get("authorization")
    if not value:
        raise _unauthorized(
            "no Authorization header: send 'Authorization: Bearer <Entra access token>'", "no_bearer"
        )
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header is not 'Bearer <token>'", "not_bearer")
    return token.strip()


def _keys_unavailable() -> ApiError:
    return ApiError(
        503, "identity_provider_unavailable", "the Entra signing keys could not be fetched; retry later"
    )


def _unauthorized(detail: str, reason: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, "Authorization", reason=reason)
