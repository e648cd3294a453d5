"""Checks a federated ``client_assertion`` as Entra does: a matching credential, the issuer's keys, time."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from . import exceptions as errors
from .directory import FederatedCredential

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# An assertion minted on a host whose clock runs slightly ahead is still accepted, as Entra does.
_NOT_BEFORE_SKEW = 300
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

KeyFetcher = Callable[[str], Awaitable[jwt.PyJWKSet]]


def _audiences(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


async def validate_assertion(
    assertion: str,
    credentials: Sequence[FederatedCredential],
    *,
    default_issuer: str,
    fetch_keys: KeyFetcher,
) -> None:
    """Raise the ``EntraError`` Entra would answer with, or return if the assertion signs the app in.

    ``default_issuer`` replaces a credential's ``issuer=None`` (this stand-in's Kubernetes issuer).
    """
    try:
        header = jwt.get_unverified_header(assertion)
        claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise errors.malformed_assertion() from None
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str):
        raise errors.malformed_assertion()

    by_issuer = [c for c in credentials if (c.issuer or default_issuer) == issuer]
    if not by_issuer:
        raise errors.no_matching_issuer(issuer)
    by_subject = [c for c in by_issuer if c.subject == subject]
    if not by_subject:
        raise errors.no_matching_subject(subject)
    presented = _audiences(claims.get("aud"))
    if not any(set(c.audiences) & set(presented) for c in by_subject):
        raise errors.no_matching_audience(",".join(presented))

    keys = await fetch_keys(issuer)
    kid = header.get("kid")
    try:
        key = keys[kid] if kid else next(iter(keys.keys))
    except (KeyError, StopIteration):
        raise errors.assertion_signature_invalid() from None
    try:
        jwt.decode(
            assertion,
            key,
            algorithms=[key.algorithm_name],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.PyJWTError:
        raise errors.assertion_signature_invalid() from None

    now = int(time.time())
    expires, not_before = claims.get("exp"), claims.get("nbf")
    exp = int(expires) if isinstance(expires, (int, float)) else None
    nbf = int(not_before) if isinstance(not_before, (int, float)) else None
    if exp is None or now >= exp or (nbf is not None and now + _NOT_BEFORE_SKEW < nbf):
        raise errors.assertion_out_of_time_range(now, nbf, exp)


def _require_loopback_https(url: str, issuer: str) -> None:
    parts = urlsplit(url)
    # The stand-in never connects off the machine: an issuer elsewhere is as unreachable as a dead one.
    if parts.scheme != "https" or parts.hostname not in _LOOPBACK_HOSTS:
        raise errors.issuer_keys_unavailable(issuer)


def https_key_fetcher(ssl_context: ssl.SSLContext) -> KeyFetcher:
    """Read an issuer's keys through its OIDC discovery document, over HTTPS on loopback only."""

    async def fetch(issuer: str) -> jwt.PyJWKSet:
        _require_loopback_https(issuer, issuer)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
                async with session.get(discovery_url, ssl=ssl_context) as resp:
                    resp.raise_for_status()
                    jwks_uri = (await resp.json(content_type=None))["jwks_uri"]
                _require_loopback_https(jwks_uri, issuer)
                async with session.get(jwks_uri, ssl=ssl_context) as resp:
                    resp.raise_for_status()
                    return jwt.PyJWKSet.from_dict(await resp.json(content_type=None))
        except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, TypeError, ValueError, jwt.PyJWTError):
            raise errors.issuer_keys_unavailable(issuer) from None

    return fetch
