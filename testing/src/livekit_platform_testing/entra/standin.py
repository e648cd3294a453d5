"""An Entra ID stand-in: OIDC discovery, JWKS, the token endpoint, Microsoft Graph, IMDS, a Kubernetes issuer.

Reach it through the real azure-identity credentials (``authority=``/``AZURE_AUTHORITY_HOST`` + its CA).
Run as a process with ``python -m livekit_platform_sdk.testing.entra [--config apps.json]``; its admin API
lives under ``/_standin``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
from aiohttp import web

from . import _entra_errors as errors
from ._entra_admin import admin_routes
from ._entra_config import apply_config
from ._entra_directory import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    TOKEN_EXCHANGE_AUDIENCE,
    AppRegistration,
    Directory,
    FederatedCredential,
    UnknownAppError,
)
from ._entra_discovery import openid_configuration_v1, openid_configuration_v2
from ._entra_federation import JWT_BEARER, https_key_fetcher, validate_assertion
from ._entra_graph import GraphApi
from ._entra_imds import IMDS_TOKEN_PATH, ImdsEndpoint
from ._entra_keys import SigningKey
from ._entra_kubernetes import ServiceAccountIssuer, write_atomically
from ._entra_records import GraphRequest, Records, TokenRequest
from ._entra_tokens import AUTH_ASSERTION, AUTH_SECRET, Issuers, access_token_claims
from ._server import LOOPBACK, StandInServer, json_response, serve_forever
from ._tls import LocalTLS

__all__ = [
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "GRAPH_SCOPE",
    "TOKEN_EXCHANGE_AUDIENCE",
    "AppRegistration",
    "EntraStandIn",
    "FederatedCredential",
    "GraphRequest",
    "TokenRequest",
    "UnknownAppError",
    "main",
]

GRAPH_SCOPE = f"{GRAPH_RESOURCE}/.default"
_Handler = Callable[[web.Request], Awaitable[web.Response]]
_RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
_DEFAULT_SUFFIX = "/.default"


class EntraStandIn(StandInServer):
    """One Entra tenant on ``https://127.0.0.1:<port>``, plus Graph, an IMDS endpoint and a Kubernetes issuer.

    HTTPS endpoints (``url`` is the authority host; ``{tenant}`` is ``tenant_id``):

    - ``/{tenant}/v2.0/.well-known/openid-configuration`` (v1: ``/{tenant}/.well-known/openid-configuration``)
    - ``/{tenant}/discovery/v2.0/keys`` (and v1 ``/{tenant}/discovery/keys``): the JWKS
    - ``/{tenant}/oauth2/v2.0/token`` (and v1 ``/{tenant}/oauth2/token``): ``client_credentials`` with
      ``client_secret`` (post or basic) or a federated ``client_assertion``
    - ``/graph/v1.0/applications(appId='...')`` (``graph_url``): Microsoft Graph (``Application.Read.All``)
    - ``/kubernetes/.well-known/openid-configuration`` and ``/kubernetes/openid/v1/jwks``: the service-account
      issuer (``kubernetes_issuer_url``) whose tokens federated credentials accept
    - ``/_standin/...``: the admin API (JSON), same capabilities as the methods below

    Plain HTTP on a second port (``imds_url``, what ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` takes, since IMDS is
    plain HTTP): ``/metadata/identity/oauth2/token`` for managed identities, requiring ``Metadata: true``.

    Tokens are RS256 with a ``kid``; their version follows the *resource* app's ``access_token_version``:
    2 (the default here, as for apps that set ``requestedAccessTokenVersion: 2``) gives ``iss`` =
    ``issuer`` (``.../{tenant}/v2.0``), ``aud`` = the resource's app ID, ``azp``/``azpacr``; 1 (Microsoft
    Graph, or ``access_token_version=1``) gives ``iss`` = ``v1_issuer``, ``aud`` = the identifier URI as
    requested, ``appid``/``appidacr``. Both carry ``oid``/``sub`` (the client's service principal object
    ID), ``tid``, ``iat``/``nbf``/``exp`` and ``roles`` when the client holds app roles on the resource.

    Every public method is thread-safe and may be called while clients are getting tokens.
    """

    scheme = "https"

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        port: int = 0,
        imds_port: int = 0,
        tls: LocalTLS | None = None,
        token_lifetime: int = 3600,
    ) -> None:
        if token_lifetime <= 0:
            raise ValueError(f"token_lifetime={token_lifetime!r} must be a positive number of seconds")
        self.tls = tls or LocalTLS()
        super().__init__(port=port, ssl_context=self.tls.server_context())
        self.tenant_id = tenant_id or str(uuid.uuid4())
        if not self.tenant_id.replace("-", "").replace(".", "").isalnum():
            raise ValueError(
                f"tenant_id={self.tenant_id!r} is not a tenant ID: use a GUID (or a domain like contoso.com)"
            )
        self.token_lifetime = token_lifetime
        self._imds_port = imds_port
        self._imds_runner: web.AppRunner | None = None
        self._directory = Directory()
        self._records = Records()
        self._key = SigningKey()
        self._kubernetes = ServiceAccountIssuer()
        self._fetch_issuer_keys = https_key_fetcher(self.tls.client_context())
        self._imds = ImdsEndpoint(
            directory=self._directory,
            records=self._records,
            issue=self._issue_token,
            tenant_id=self.tenant_id,
        )
        self._graph = GraphApi(
            directory=self._directory,
            key=self._key,
            issuers=self._issuers,
            graph_url=lambda: self.graph_url,
            records=self._records,
        )

    # -- URLs -----------------------------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """The PEM bundle a client must trust to reach the HTTPS endpoints."""
        return self.tls.ca_file

    @property
    def authority_host(self) -> str:
        """What ``AZURE_AUTHORITY_HOST`` or a credential's ``authority=`` takes."""
        return self.url

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant_id}"

    @property
    def issuer(self) -> str:
        """The v2 token issuer, ``https://127.0.0.1:<port>/{tenant}/v2.0``."""
        return f"{self.authority}/v2.0"

    @property
    def v1_issuer(self) -> str:
        """The v1 token issuer, ``https://127.0.0.1:<port>/{tenant}/`` (real Entra: ``https://sts.windows.net/{tenant}/``)."""
        return f"{self.authority}/"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def graph_url(self) -> str:
        """Microsoft Graph's v1.0 base URL (real: ``https://graph.microsoft.com/v1.0``)."""
        return f"{self.url}/graph/v1.0"

    @property
    def kubernetes_issuer_url(self) -> str:
        """The service-account issuer (an AKS cluster's ``oidcIssuerProfile.issuerURL``)."""
        return f"{self.url}/kubernetes"

    @property
    def imds_url(self) -> str:
        """The plain-HTTP IMDS base URL, the value for ``AZURE_POD_IDENTITY_AUTHORITY_HOST``."""
        if self._imds_runner is None:
            raise RuntimeError("EntraStandIn is not running: call start() first")
        return f"http://{LOOPBACK}:{self._imds_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.url}/_standin"

    def _issuers(self) -> Issuers:
        return Issuers(v1=self.v1_issuer, v2=self.issuer)

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "authority_host": self.authority_host,
            "authority": self.authority,
            "tenant_id": self.tenant_id,
            "issuer": self.issuer,
            "v1_issuer": self.v1_issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.token_endpoint,
            "graph_url": self.graph_url,
            "graph_app_id": GRAPH_APP_ID,
            "imds_url": self.imds_url,
            "kubernetes_issuer": self.kubernetes_issuer_url,
            "ca_file": str(self.ca_file),
            "admin_url": self.admin_url,
        }

    # -- the tenant (admin API) ----------------------------------------------------------------------------

    def register_app(
        self,
        app_id: str | None = None,
        *,
        display_name: str = "stand-in app",
        identifier_uri: str | None = None,
        app_roles: Iterable[str] = (),
        access_token_version: int = 2,
        exposed_scopes: Iterable[str] = (),
    ) -> AppRegistration:
        """Register an app and its service principal (``app_id`` defaults to a new GUID).

        ``identifier_uri`` defaults to ``api://<app_id>``; ``app_roles`` are application permissions others
        can be assigned (``assign_role``); ``exposed_scopes`` (e.g. ``["access_as_client"]``) get stable IDs
        and appear in Graph's ``oauth2PermissionScopes``. ``access_token_version`` picks the tokens issued
        *for* this app as a resource (see the class docstring).
        """
        return self._directory.register_app(
            app_id,
            display_name=display_name,
            identifier_uri=identifier_uri,
            app_roles=app_roles,
            access_token_version=access_token_version,
            exposed_scopes=exposed_scopes,
        )

    def add_managed_identity(
        self, client_id: str | None = None, *, display_name: str = "stand-in identity"
    ) -> AppRegistration:
        """A user-assigned managed identity: gets tokens from the IMDS endpoint or with a federated
        credential (AKS workload identity), never with a secret."""
        return self._directory.register_app(
            client_id,
            display_name=display_name,
            identifier_uri=None,
            app_roles=(),
            access_token_version=2,
            exposed_scopes=(),
            managed_identity=True,
        )

    def app(self, app_id: str) -> AppRegistration:
        """A snapshot of the app's current registration; raises ``UnknownAppError``."""
        return self._directory.app(app_id)

    def apps(self) -> list[AppRegistration]:
        """Every app registration and managed identity, including the built-in Microsoft Graph."""
        return self._directory.apps()

    def add_secret(self, app_id: str, secret: str | None = None) -> str:
        """Add a client secret (generated in Entra's shape unless given) and return it."""
        return self._directory.add_secret(app_id, secret)

    def remove_secret(self, app_id: str, secret: str) -> None:
        self._directory.remove_secret(app_id, secret)

    def disable_app(self, app_id: str) -> AppRegistration:
        """Sign-in disabled: token requests as this client fail with AADSTS7000112."""
        return self._directory.set_enabled(app_id, False)

    def enable_app(self, app_id: str) -> AppRegistration:
        return self._directory.set_enabled(app_id, True)

    def add_federated_credential(
        self,
        app_id: str,
        *,
        issuer: str | None = None,
        subject: str,
        audiences: Sequence[str] = (TOKEN_EXCHANGE_AUDIENCE,),
        name: str = "",
    ) -> FederatedCredential:
        """Trust assertions from ``issuer`` (default: this stand-in's ``kubernetes_issuer_url``) with exactly
        this ``subject`` (e.g. ``system:serviceaccount:<ns>:<sa>``) and one of ``audiences``."""
        credential = FederatedCredential(
            issuer=issuer, subject=subject, audiences=tuple(audiences), name=name
        )
        self._directory.add_federated_credential(app_id, credential)
        return credential

    def assign_role(self, client_app_id: str, resource_app_id: str, role: str) -> None:
        """Grant ``client_app_id`` the app role ``role`` of ``resource_app_id`` (e.g. ``GRAPH_APP_ID``,
        ``"Application.Read.All"``); tokens issued from now on carry it."""
        self._directory.assign_role(client_app_id, resource_app_id, role)

    def remove_role(self, client_app_id: str, resource_app_id: str, role: str) -> None:
        """Revoke a role; the next token issued lacks it (tokens already issued keep it until they expire)."""
        self._directory.remove_role(client_app_id, resource_app_id, role)

    def pre_authorize(
        self, resource_app_id: str, client_app_id: str, scopes: Sequence[str] = ("access_as_client",)
    ) -> None:
        """Add ``client_app_id`` to the resource's ``api.preAuthorizedApplications`` for ``scopes``."""
        self._directory.pre_authorize(resource_app_id, client_app_id, list(scopes))

    def load_config(self, config: Mapping[str, Any]) -> None:
        """Preload apps, secrets, federated credentials, managed identities, roles and pre-authorizations.

        The shape (every key optional)::

            {"apps": [{"app_id", "display_name", "identifier_uri", "app_roles": [], "access_token_version": 2,
                       "exposed_scopes": [], "secrets": [], "disabled": false,
                       "federated_credentials": [{"issuer" (default: the Kubernetes issuer), "subject",
                                                  "audiences"}]}],
             "managed_identities": [{"client_id", "display_name", "federated_credentials": [...]}],
             "role_assignments": [{"client_app_id", "resource_app_id", "role"}],
             "pre_authorizations": [{"resource_app_id", "client_app_id", "scopes": []}]}
        """
        apply_config(self, config)

    # -- Kubernetes service-account tokens ------------------------------------------------------------------

    def service_account_token(
        self,
        *,
        namespace: str,
        service_account: str,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        issued_at: float | None = None,
    ) -> str:
        """A projected service-account token from ``kubernetes_issuer_url`` (``issued_at`` backdates it)."""
        return self._kubernetes.token(
            self.kubernetes_issuer_url,
            namespace=namespace,
            service_account=service_account,
            audience=audience,
            lifetime=lifetime,
            issued_at=issued_at,
        )

    def write_service_account_token(
        self,
        path: str | Path,
        *,
        namespace: str,
        service_account: str,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        issued_at: float | None = None,
    ) -> Path:
        """Write (atomically replace) a projected token file (``AZURE_FEDERATED_TOKEN_FILE``); return it."""
        token = self.service_account_token(
            namespace=namespace,
            service_account=service_account,
            audience=audience,
            lifetime=lifetime,
            issued_at=issued_at,
        )
        return write_atomically(Path(path), token)

    # -- checking tokens and what happened ------------------------------------------------------------------

    def verify(self, token: str, *, audience: str, issuer: str | None = None) -> dict[str, Any]:
        """Validate ``token`` with PyJWT against the JWKS served at ``jwks_uri``; return its claims.

        ``issuer`` defaults to either of the tenant's issuers (v1 or v2). Raises ``jwt.PyJWTError``.
        """
        client = jwt.PyJWKClient(self.jwks_uri, cache_keys=False, ssl_context=self.tls.client_context())
        key = client.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer or [self.issuer, self.v1_issuer],
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "tid", "oid", "sub"]},
        )
        return claims

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._key.jwk, "issuer": self.issuer}]}

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every token request (token endpoints and IMDS), oldest first; never secrets or assertions."""
        return self._records.token_requests()

    @property
    def issued_tokens(self) -> list[dict[str, Any]]:
        """Claims of every token issued so far, oldest first."""
        return self._records.issued()

    @property
    def graph_requests(self) -> list[GraphRequest]:
        return self._records.graph_requests()

    def clear_records(self) -> None:
        self._records.clear()

    # -- environment for clients ----------------------------------------------------------------------------

    def ca_env(self) -> dict[str, str]:
        """Trust the stand-in CA: ``REQUESTS_CA_BUNDLE`` (sync azure-identity) and ``SSL_CERT_FILE`` (aio)."""
        return {"SSL_CERT_FILE": str(self.ca_file), "REQUESTS_CA_BUNDLE": str(self.ca_file)}

    def service_principal_env(self, app_id: str, secret: str) -> dict[str, str]:
        """``AZURE_*`` variables for ``EnvironmentCredential`` (and so ``DefaultAzureCredential``)."""
        return {
            **self.ca_env(),
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": app_id,
            "AZURE_CLIENT_SECRET": secret,
        }

    def workload_identity_env(self, app_id: str, token_file: str | Path) -> dict[str, str]:
        """``AZURE_*`` variables as the AKS workload-identity webhook injects them."""
        return {
            **self.ca_env(),
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": app_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        }

    def managed_identity_env(self, client_id: str | None = None) -> dict[str, str]:
        """Point ``ManagedIdentityCredential``'s IMDS requests at this stand-in (and pick the identity)."""
        env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_url}
        if client_id:
            env["AZURE_CLIENT_ID"] = client_id
        return env

    # -- server ---------------------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(admin_routes(self))
        app.router.add_get("/kubernetes/.well-known/openid-configuration", self._kubernetes_discovery)
        app.router.add_get("/kubernetes/openid/v1/jwks", self._kubernetes_jwks)
        app.router.add_route("*", "/graph/v1.0/{path:.*}", self._graph.handle)
        tenant_documents: dict[str, Callable[[], dict[str, Any]]] = {
            "/{tenant}/v2.0/.well-known/openid-configuration": lambda: openid_configuration_v2(
                authority=self.authority, issuer=self.issuer
            ),
            "/{tenant}/.well-known/openid-configuration": lambda: openid_configuration_v1(
                authority=self.authority, issuer=self.v1_issuer
            ),
            "/{tenant}/discovery/v2.0/keys": self.jwks,
            # v1 keys carry no per-key issuer, as in Entra.
            "/{tenant}/discovery/keys": lambda: {"keys": [self._key.jwk]},
        }
        for path, document in tenant_documents.items():
            app.router.add_get(path, self._tenant_json(document))
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/{tenant}/oauth2/token", self._token)
        return app

    async def on_started(self) -> None:
        imds = web.Application()
        imds.router.add_get(IMDS_TOKEN_PATH, self._imds.handle)
        runner = web.AppRunner(imds, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, self._imds_port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the asyncio server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        # Keep the port so restart() brings IMDS back where clients were told it is.
        self._imds_port = int(sockets[0].getsockname()[1])
        self._imds_runner = runner

    async def on_stopping(self) -> None:
        if self._imds_runner is not None:
            await self._imds_runner.cleanup()
            self._imds_runner = None

    def _check_tenant(self, request: web.Request) -> None:
        tenant = request.match_info["tenant"]
        if tenant.lower() != self.tenant_id.lower():
            raise errors.tenant_not_found(tenant)

    def _tenant_json(self, document: Callable[[], dict[str, Any]]) -> _Handler:
        """A GET handler serving ``document()`` for this tenant and Entra's AADSTS90002 for any other."""

        async def handle(request: web.Request) -> web.Response:
            try:
                self._check_tenant(request)
            except errors.EntraError as exc:
                return exc.response(request.headers.get("client-request-id"))
            return json_response(document())

        return handle

    async def _kubernetes_discovery(self, request: web.Request) -> web.Response:
        return json_response(self._kubernetes.discovery(self.kubernetes_issuer_url))

    async def _kubernetes_jwks(self, request: web.Request) -> web.Response:
        return json_response(self._kubernetes.jwks())

    async def _token(self, request: web.Request) -> web.Response:
        v1 = request.path.endswith("/oauth2/token")
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        basic_id, basic_secret = _basic_credentials(request)
        client_id = fields.get("client_id") or basic_id
        secret = fields.get("client_secret") or basic_secret
        assertion = fields.get("client_assertion")
        client_auth = "client_secret" if secret else "client_assertion" if assertion else None
        scope = fields.get("resource" if v1 else "scope")

        def record(outcome: str, error: errors.EntraError | None = None) -> None:
            self._records.add_token_request(
                TokenRequest(
                    time=time.time(),
                    endpoint="token_v1" if v1 else "token",
                    client_id=client_id,
                    grant_type=fields.get("grant_type"),
                    client_auth=client_auth,
                    scope=scope,
                    outcome=outcome,
                    error=error.error if error else None,
                    error_code=error.code if error else None,
                )
            )

        try:
            self._check_tenant(request)
            client = await self._authenticate_client(fields, client_id, secret, assertion)
            requested, resource = self._requested_resource(scope, v1=v1)
        except errors.EntraError as exc:
            record("error", exc)
            return exc.response(request.headers.get("client-request-id"))
        token, claims = self._issue_token(
            client, resource, requested, AUTH_SECRET if client_auth == "client_secret" else AUTH_ASSERTION
        )
        record("issued")
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }
        if v1:
            body.update(expires_on=str(claims["exp"]), not_before=str(claims["nbf"]), resource=requested)
        return json_response(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    async def _authenticate_client(
        self, fields: dict[str, str], client_id: str | None, secret: str | None, assertion: str | None
    ) -> AppRegistration:
        grant_type = fields.get("grant_type")
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        if grant_type != "client_credentials":
            raise errors.unsupported_grant_type(grant_type)
        if not client_id:
            raise errors.missing_parameter("client_id")
        client = self._directory.find(client_id)
        if client is None:
            raise errors.unknown_client(client_id, self.tenant_id)
        if not client.enabled:
            raise errors.disabled_app(client.app_id, client.display_name)
        if secret:
            if not self._directory.secret_matches(client.app_id, secret):
                raise errors.invalid_client_secret(client.app_id)
        elif assertion:
            assertion_type = fields.get("client_assertion_type", "")
            if assertion_type != JWT_BEARER:
                raise errors.invalid_assertion_type(assertion_type)
            await validate_assertion(
                assertion,
                self._directory.federated_credentials(client.app_id),
                default_issuer=self.kubernetes_issuer_url,
                fetch_keys=self._fetch_issuer_keys,
            )
        else:
            raise errors.missing_client_credential()
        return client

    def _requested_resource(self, scope: str | None, *, v1: bool) -> tuple[str, AppRegistration]:
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
        resource = self._directory.find_resource(requested)
        if resource is None or resource.managed_identity:
            raise errors.unknown_resource(requested, self.tenant_id)
        return requested, resource

    def _issue_token(
        self, client: AppRegistration, resource: AppRegistration, requested: str, client_auth: str
    ) -> tuple[str, dict[str, Any]]:
        """Sign an access token for ``client`` to call ``resource``; return it and its claims."""
        claims = access_token_claims(
            issuers=self._issuers(),
            tenant_id=self.tenant_id,
            client=client,
            resource=resource,
            requested_resource=requested,
            roles=self._directory.roles(client.app_id, resource.app_id),
            client_auth=client_auth,
            lifetime=self.token_lifetime,
        )
        self._records.add_issued(claims)
        return self._key.sign(claims), claims


def _basic_credentials(request: web.Request) -> tuple[str | None, str | None]:
    """``client_secret_basic``: the client ID and secret from an ``Authorization: Basic`` header."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except ValueError:
        return None, None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else (None, None)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m livekit_platform_sdk.testing.entra",
        description="Run the Entra ID / Microsoft Graph / IMDS stand-in; prints one JSON line of URLs.",
    )
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: any free port)")
    parser.add_argument(
        "--imds-port", type=int, default=0, help="plain-HTTP IMDS port (default: any free port)"
    )
    parser.add_argument("--tenant-id", default=None, help="tenant ID (default: a new GUID)")
    parser.add_argument("--config", type=Path, default=None, help="JSON file of apps etc. to preload")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds")
    args = parser.parse_args(argv)
    try:
        standin = EntraStandIn(
            tenant_id=args.tenant_id,
            port=args.port,
            imds_port=args.imds_port,
            token_lifetime=args.token_lifetime,
        )
        if args.config is not None:
            standin.load_config(json.loads(args.config.read_text()))
    except (OSError, ValueError, LookupError) as exc:
        parser.error(f"--config {args.config}: {exc}" if args.config else str(exc))
    serve_forever(standin)


if __name__ == "__main__":
    main(sys.argv[1:])
