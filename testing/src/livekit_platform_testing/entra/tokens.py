"""App-only access tokens as Entra issues them: v1 or v2 claims, per the resource app's token version."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .directory import AppRegistration

# appidacr/azpacr say how the client authenticated: "1" a client secret; "2" a certificate, an assertion
# or a managed identity.
AUTH_SECRET = "1"  # noqa: S105 (a claim value, not a secret)
AUTH_ASSERTION = "2"


def _opaque(n: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Issuers:
    """The tenant's two token issuers: ``v2`` (``.../{tenant}/v2.0``) and ``v1`` (``.../{tenant}/``)."""

    v1: str
    v2: str


def access_token_claims(
    *,
    issuers: Issuers,
    tenant_id: str,
    client: AppRegistration,
    resource: AppRegistration,
    requested_resource: str,
    roles: list[str],
    client_auth: str,
    lifetime: int,
) -> dict[str, Any]:
    """Claims of an app-only token for ``client`` to call ``resource``.

    v2 (resource's ``access_token_version`` 2): ``aud`` is the resource's app ID, ``azp``/``azpacr`` name
    the client. v1: ``aud`` is the resource identifier as requested, ``appid``/``appidacr``/``idp`` name
    the client. Both carry ``oid``/``sub`` (the client's service principal), ``tid`` and, only when the
    client holds any, ``roles``.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "aio": _opaque(48),
        "oid": client.service_principal_id,
        "rh": f"1.{_opaque(40)}.",
        "sub": client.service_principal_id,
        "tid": tenant_id,
        "uti": _opaque(16),
    }
    if resource.access_token_version == 2:
        claims.update(aud=resource.app_id, iss=issuers.v2, azp=client.app_id, azpacr=client_auth, ver="2.0")
    else:
        claims.update(
            aud=requested_resource,
            iss=issuers.v1,
            appid=client.app_id,
            appidacr=client_auth,
            idp=issuers.v1,
            ver="1.0",
        )
    if roles:
        claims["roles"] = roles
    return claims
