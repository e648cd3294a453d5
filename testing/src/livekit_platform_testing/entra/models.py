"""The Entra stand-in's backend: the tenant's state (directory, records, keys) and how it issues tokens.

The wire (``responses``, ``graph``, ``imds``, ``admin``) parses requests and calls this; nothing here knows
HTTP beyond raising the ``EntraError`` the token endpoint answers with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import exceptions as errors
from .directory import AppRegistration, Directory
from .federation import JWT_BEARER, KeyFetcher, validate_assertion
from .keys import SigningKey
from .kubernetes import ServiceAccountIssuer
from .records import Records
from .tokens import Issuers, access_token_claims

_RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
_DEFAULT_SUFFIX = "/.default"


class EntraBackend:
    """One tenant's objects, what happened to them, and its keys; thread-safe like the directory it holds.

    ``issuers`` and ``kubernetes_issuer_url`` are callables because both depend on the server's port.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        token_lifetime: int,
        issuers: Callable[[], Issuers],
        kubernetes_issuer_url: Callable[[], str],
        fetch_issuer_keys: KeyFetcher,
    ) -> None:
        self.tenant_id = tenant_id
        self.token_lifetime = token_lifetime
        self.issuers = issuers
        self.kubernetes_issuer_url = kubernetes_issuer_url
        self.directory = Directory()
        self.records = Records()
        self.key = SigningKey()
        self.kubernetes = ServiceAccountIssuer()
        self._fetch_issuer_keys = fetch_issuer_keys

    def jwks(self) -> dict[str, Any]:
        """The v2.0 JWKS: each key names its issuer, as in Entra."""
        return {"keys": [{**self.key.jwk, "issuer": self.issuers().v2}]}

    def jwks_v1(self) -> dict[str, Any]:
        """The v1 JWKS: no per-key issuer, as in Entra."""
        return {"keys": [self.key.jwk]}

    def check_tenant(self, tenant: str) -> None:
        if tenant.lower() != self.tenant_id.lower():
            raise errors.tenant_not_found(tenant)

    async def authenticate_client(
        self, fields: dict[str, str], client_id: str | None, secret: str | None, assertion: str | None
    ) -> AppRegistration:
        grant_type = fields.get("grant_type")
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        if grant_type != "client_credentials":
            raise errors.unsupported_grant_type(grant_type)
        if not client_id:
            raise errors.missing_parameter("client_id")
        client = self.directory.find(client_id)
        if client is None:
            raise errors.unknown_client(client_id, self.tenant_id)
        if not client.enabled:
            raise errors.disabled_app(client.app_id, client.display_name)
        if secret:
            if not self.directory.secret_matches(client.app_id, secret):
                raise errors.invalid_client_secret(client.app_id)
        elif assertion:
            assertion_type = fields.get("client_assertion_type", "")
            if assertion_type != JWT_BEARER:
                raise errors.invalid_assertion_type(assertion_type)
            await validate_assertion(
                assertion,
                self.directory.federated_credentials(client.app_id),
                default_issuer=self.kubernetes_issuer_url(),
                fetch_keys=self._fetch_issuer_keys,
            )
        else:
            raise errors.missing_client_credential()
        return client

    def requested_resource(self, scope: str | None, *, v1: bool) -> tuple[str, AppRegistration]:
        if v1:
            if not scope:
                raise errors.missing_parameter("resource")
            requested = scope
        else:
            if not scope:
                raise errors.missing_parameter("scope")
            wanted = [s for s in scope.split() if s.lower() not in _RESERVED_SCOPES]
            if len(wanted) != 1:
                raise errors.invalid_scope(scope)
            if not wanted[0].endswith(_DEFAULT_SUFFIX):
                raise errors.scope_not_default(wanted[0])
            requested = wanted[0][: -len(_DEFAULT_SUFFIX)]
        resource = self.directory.find_resource(requested)
        if resource is None or resource.managed_identity:
            raise errors.unknown_resource(requested, self.tenant_id)
        return requested, resource

    def issue_token(
        self, client: AppRegistration, resource: AppRegistration, requested: str, client_auth: str
    ) -> tuple[str, dict[str, Any]]:
        """Sign an access token for ``client`` to call ``resource``; return it and its claims."""
        claims = access_token_claims(
            issuers=self.issuers(),
            tenant_id=self.tenant_id,
            client=client,
            resource=resource,
            requested_resource=requested,
            roles=self.directory.roles(client.app_id, resource.app_id),
            client_auth=client_auth,
            lifetime=self.token_lifetime,
        )
        self.records.add_issued(claims)
        return self.key.sign(claims), claims
