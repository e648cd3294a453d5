"""Identity mode ``entra``: the bearer token validated here against the tenant's OIDC metadata and JWKS, with
the endpoint's app role required."""

from __future__ import annotations

import asyncio
import contextlib
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
    """Validates the bearer token against the tenant's OIDC metadata and JWKS and requires an app role.

    Signing keys are fetched on first use and refreshed in the background once ``REFRESH_AFTER`` old; the
    keys held are used meanwhile, and for up to ``KEY_GRACE`` after their last successful fetch while Entra
    cannot be reached. Only a token naming a key not held (or the first one, or one after the grace) waits for
    a refresh, and then for at most one attempt, shared by every request waiting at the time.
    """

    # A token naming a key the cache lacks triggers a refresh, at most this often (keys rotate rarely; the
    # limit stops a stream of forged kids from turning into a stream of JWKS fetches).
    MIN_REFRESH_INTERVAL = 10.0
    # Keys this old are refreshed in the background, so retired keys eventually drop out (Microsoft asks for
    # a daily check of the metadata).
    REFRESH_AFTER = 24 * 3600.0
    # Keys are used this long after their last successful fetch while Entra cannot be reached; after it,
    # calls answer 503 until it can.
    KEY_GRACE = 72 * 3600.0

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
        self._refreshing: asyncio.Task[None] | None = None

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
            delegated="scp" in claims,
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
        key = self._usable_keys().get(kid)
        if key is not None:
            if self._clock() - (self._fetched_at or 0.0) > self.REFRESH_AFTER:
                self._refresh_soon()  # in the background: this request goes on with the key it has
            return key
        attempt = self._refresh_soon()
        if attempt is not None:
            await asyncio.shield(attempt)  # one attempt, shared; a cancelled request leaves it running
        keys = self._usable_keys()
        if not keys:
            raise _keys_unavailable()
        key = keys.get(kid)
        if key is None:
            raise _unauthorized(
                "the bearer token is signed with a key this tenant does not publish", "unknown_key"
            )
        return key

    def _usable_keys(self) -> dict[str, jwt.PyJWK]:
        """The keys held, unless their last successful fetch is older than ``KEY_GRACE`` (or never was)."""
        fetched_at = self._fetched_at
        if fetched_at is None or self._clock() - fetched_at > self.KEY_GRACE:
            return {}
        return self._keys

    def _refresh_soon(self) -> asyncio.Task[None] | None:
        """The refresh under way, else a new one unless the last attempt began under
        ``MIN_REFRESH_INTERVAL`` ago (then ``None``)."""
        if self._refreshing is not None:
            return self._refreshing
        now = self._clock()
        if self._attempted_at is not None and now - self._attempted_at < self.MIN_REFRESH_INTERVAL:
            return None
        self._attempted_at = now
        task = self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        task.add_done_callback(self._refreshed)
        return task

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshing = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("entra signing keys refresh failed", extra={"error": type(task.exception()).__name__})

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
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
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
