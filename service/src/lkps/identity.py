"""Who is calling: identity headers from a trusted gateway, or an Entra bearer token validated here.

Both modes produce the same ``Identity``; in ``entra`` mode identity headers are never read, so a caller
cannot spoof them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, Protocol

import httpx
import jwt
import orjson
from starlette.datastructures import Headers

from .errors import ApiError, bad_request
from .settings import Settings

log = logging.getLogger(__name__)

Endpoint = Literal["register", "session"]


class Identity(NamedTuple):
    """The caller, as far as the service needs it. (A named tuple: made on every request, and cheaper to
    make than a frozen dataclass.)"""

    client_id: str | None  # the calling application's Entra app (client) ID
    user_id: str | None  # the Entra object ID of the user or service principal
    email: str | None
    display_name: str | None
    cwid: str | None


class MissingRoleError(ApiError):
    """403: a valid token without the endpoint's app role. ``app_id`` is the calling application's ID when
    the token is the application's own (client credentials), so a refused registration can revoke it."""

    def __init__(self, role: str, app_id: str | None) -> None:
        super().__init__(
            403,
            "forbidden",
            f"the token has no '{role}' app role: assign the role to the calling application or user"
            " in the platform's Entra app registration",
        )
        self.app_id = app_id


class IdentityResolver(Protocol):
    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity: ...

    async def aclose(self) -> None: ...


class GatewayIdentity:
    """Trusts the headers an upstream gateway injects after validating the caller's Entra token."""

    def __init__(self, settings: Settings) -> None:
        self._client_id = settings.gateway_client_id_header.encode("latin-1")
        self._user_id = settings.gateway_user_id_header.encode("latin-1")
        self._email = settings.gateway_email_header.encode("latin-1")
        self._profiles = [name.encode("latin-1") for name in settings.gateway_profile_headers]
        self._wanted = frozenset((self._client_id, self._user_id, self._email, *self._profiles))

    async def resolve(self, headers: Headers, endpoint: Endpoint) -> Identity:
        # One pass over the raw (already lower-cased) ASGI headers instead of a scan per name; as with
        # ``Headers.get``, the first occurrence of a repeated header counts.
        found: dict[bytes, bytes] = {}
        for name, value in headers.raw:
            if name in self._wanted and name not in found:
                found[name] = value
        email = _header(found, self._email)
        display_name = cwid = None
        for name in self._profiles:  # agents registering send none
            raw = found.get(name)
            if raw:
                profile_email, display_name, cwid = _profile_fields(raw, name)
                email = email or profile_email
                break
        client_id, user_id = _header(found, self._client_id), _header(found, self._user_id)
        return Identity(client_id, user_id, email, display_name, cwid)  # positional: half the keyword cost

    async def aclose(self) -> None:
        return None


@functools.lru_cache(maxsize=1024)  # a few KB a profile at most: bounded at a few MB
def _profile_fields(raw: bytes, header: bytes) -> tuple[str | None, str | None, str | None]:
    """Email, display name and CWID from a profile header's value. Cached: the same callers come back with
    the same profile, and decoding it costs more than the lookup (a refused value raises, never cached)."""
    profile = _decode_profile(raw.decode("latin-1"), header.decode("latin-1"))
    email, cwid = _text(profile.get("email")), _text(profile.get("cwid"))
    return email, _text(profile.get("displayName")) or _joined_name(profile), cwid


def _decode_profile(raw: str, header: str) -> Mapping[str, Any]:
    """The gateway's profile object: JSON, or base64/base64url-encoded JSON (decoded only when not JSON)."""
    for decode in (_plain, _base64):
        try:
            value = orjson.loads(decode(raw))
        except ValueError:  # binascii.Error and UnicodeDecodeError included
            continue
        if isinstance(value, dict):
            return value
    raise bad_request(f"header {header} is not a JSON object (plain or base64-encoded)", header)


def _plain(raw: str) -> str:
    return raw


def _base64(raw: str) -> str:
    padded = raw + "=" * (-len(raw) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")).decode()


def _header(found: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = found.get(name)
    return value.decode("latin-1") if value else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _joined_name(profile: Mapping[str, Any]) -> str | None:
    first, last = _text(profile.get("firstName")), _text(profile.get("lastName"))
    return f"{first} {last}" if first and last else first or last


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
        client_id = _text(claims.get("azp")) or _text(claims.get("appid"))
        role = self._roles[endpoint]
        roles = claims.get("roles")
        if role and (not isinstance(roles, list) or role not in roles):
            # Only an application token (no delegated scopes) speaks for the app itself: a user signing in
            # through the agent's app registration must not be able to revoke the agent.
            raise MissingRoleError(role, client_id if "scp" not in claims else None)
        cwid = next((c for c in (_text(claims.get(n)) for n in self._cwid_claims) if c), None)
        return Identity(
            client_id=client_id,
            user_id=_text(claims.get("oid")),
            email=_text(claims.get("email"))
            or _text(claims.get("preferred_username"))
            or _text(claims.get("upn")),
            display_name=_text(claims.get("name")),
            cwid=cwid,
        )

    async def _validate(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("the bearer token is not a JWT: send an Entra access token") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _unauthorized("the bearer token has no key ID (kid): send an Entra access token")
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
            raise _unauthorized("the bearer token has expired: acquire a new one") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(
                "the bearer token is for another audience: request a token for the platform's scope"
            ) from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("the bearer token was issued by another tenant or authority") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the bearer token is invalid ({type(exc).__name__})") from None
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
            raise _unauthorized("the bearer token is signed with a key this tenant does not publish")
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
        raise _unauthorized("no Authorization header: send 'Authorization: Bearer <Entra access token>'")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header is not 'Bearer <token>'")
    return token.strip()


def _keys_unavailable() -> ApiError:
    return ApiError(
        503, "identity_provider_unavailable", "the Entra signing keys could not be fetched; retry later"
    )


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, "Authorization")


def build_identity(settings: Settings, *, http: httpx.AsyncClient | None = None) -> IdentityResolver:
    if settings.identity_mode == "gateway":
        return GatewayIdentity(settings)
    return EntraIdentity(settings, http=http)
