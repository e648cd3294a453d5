"""The Entra ID stand-in: one tenant on HTTPS with Microsoft Graph, an IMDS endpoint and a Kubernetes issuer.

Reach it through the real azure-identity credentials (``authority=``/``AZURE_AUTHORITY_HOST`` + its CA).
Run as a process with ``python -m livekit_platform_testing.entra [--config apps.json]``; its admin API
lives under ``/_standin``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from ..server import LOOPBACK, StandInServer
from ..tls import LocalTLS
from .config import apply_config
from .directory import (
    GRAPH_APP_ID,
    TOKEN_EXCHANGE_AUDIENCE,
    AppRegistration,
    FederatedCredential,
)
from .federation import https_key_fetcher
from .kubernetes import write_atomically
from .models import EntraBackend
from .records import GraphRequest, TokenRequest
from .tokens import Issuers
from .urls import build_app, build_imds_app


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
        self.backend = EntraBackend(
            tenant_id=self.tenant_id,
            token_lifetime=token_lifetime,
            issuers=self._issuers,
            kubernetes_issuer_url=lambda: self.kubernetes_issuer_url,
            fetch_issuer_keys=https_key_fetcher(self.tls.client_context()),
        )
        """The tenant's state (directory, records, keys); the methods below are the way to change it."""
        self._directory = self.backend.directory
        self._records = self.backend.records

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
        return self.backend.kubernetes.token(
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
        return self.backend.jwks()

    def user_token(
        self,
        client_app_id: str,
        resource_app_id: str,
        *,
        user_oid: str,
        scopes: str = "user_impersonation",
        roles: Sequence[str] = (),
        **claims: Any,
    ) -> str:
        """A delegated (user) v2 access token, as Entra issues one to a public client (the Azure CLI, say)
        after a user signs in: ``azp`` is the client app, ``scp`` the delegated scopes, ``oid``/``sub`` the
        user, ``roles`` the app roles assigned to the user; ``claims`` add or replace claims (``name``,
        ``preferred_username``, ...). The stand-in has no interactive sign-in: tests mint these directly."""
        now = int(time.time())
        token_claims: dict[str, Any] = {
            "aud": resource_app_id,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "azp": client_app_id,
            "azpacr": "0",
            "scp": scopes,
            "oid": user_oid,
            "sub": user_oid,
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        if roles:
            token_claims["roles"] = list(roles)
        token_claims.update(claims)
        self._records.add_issued(token_claims)
        return self.backend.key.sign(token_claims)

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
        return build_app(self)

    async def on_started(self) -> None:
        runner = web.AppRunner(build_imds_app(self), access_log=None, handle_signals=False)
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
