"""One Entra tenant wired the way the LiveKit platform expects it, on an ``EntraStandIn``.

The platform's app registration holds the app roles ``Agent.Register``, ``Session.Start`` and
``Platform.Admin`` (the admin views; granted to no app unless a test grants it), Microsoft
Graph's ``Application.Read.All`` (it reads agents' pre-authorized clients) and a client secret (its Graph
credential). Agents are app registrations that expose ``access_as_client`` and hold ``Agent.Register``, with a
client secret (service principal) or a federated credential for a Kubernetes service account (AKS workload
identity, the projected token written to a file). Clients hold ``Session.Start`` and are pre-authorized for
the agents they may start. Tokens come from the stand-in through azure-identity, as real callers get them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from azure.identity import ClientSecretCredential

from .entra import GRAPH_APP_ID, EntraStandIn
from .platform.roles import ADMIN_ROLE, CLIENT_SCOPE, GRAPH_READ_ROLE, REGISTER_ROLE, SESSION_ROLE

__all__ = [
    "ADMIN_ROLE",
    "CLIENT_SCOPE",
    "REGISTER_ROLE",
    "SESSION_ROLE",
    "App",
    "Tenant",
    "WorkloadIdentity",
    "client_secret_token",
]


@dataclass(frozen=True)
class App:
    """An app registration (or managed identity); ``secret`` is empty for one without a client secret."""

    app_id: str
    display_name: str
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class WorkloadIdentity:
    """An agent identity federated with a Kubernetes service account, and its projected token file."""

    app: App
    namespace: str
    service_account: str
    token_file: Path

    @property
    def subject(self) -> str:
        """The service account's token subject, which the federated credential trusts."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def client_secret_token(entra: EntraStandIn, app: App, scope: str) -> str:
    """A fresh access token for ``app`` from ``entra`` (client credentials, ``ClientSecretCredential``).

    A new credential each time: azure-identity caches tokens per credential, and callers want the roles the
    app holds now.
    """
    if not app.secret:
        raise ValueError(
            f"app {app.app_id} ({app.display_name}) has no client secret to get a token with: add it with "
            "a secret (Tenant.add_agent or Tenant.add_client) or use its federated credential"
        )
    credential = ClientSecretCredential(
        entra.tenant_id,
        app.app_id,
        app.secret,
        authority=entra.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(entra.ca_file),
    )
    try:
        return credential.get_token(scope).token
    finally:
        credential.close()


def _app_id(app: App | str) -> str:
    return app.app_id if isinstance(app, App) else app


class Tenant:
    """Sets up the platform's app registration in ``entra`` and adds agents and clients to it.

    ``platform_app_id`` fixes the platform's app (client) ID (default: a new GUID), as a generated repo uses
    the ID it was generated with. Every app set up here is in ``apps``, in order, with its secret.
    """

    def __init__(
        self,
        entra: EntraStandIn,
        *,
        platform_app_id: str | None = None,
        platform_display_name: str = "LiveKit Platform Service",
    ) -> None:
        self.entra = entra
        platform_id = entra.register_app(
            platform_app_id,
            display_name=platform_display_name,
            app_roles=[REGISTER_ROLE, SESSION_ROLE, ADMIN_ROLE],
        ).app_id
        # The service reads preAuthorizedApplications from Graph with its own client secret.
        entra.assign_role(platform_id, GRAPH_APP_ID, GRAPH_READ_ROLE)
        self.platform = App(platform_id, platform_display_name, entra.add_secret(platform_id))
        self.apps: list[App] = [self.platform]

    @property
    def scope(self) -> str:
        """The platform's client-credentials scope (``LIVEKIT_PLATFORM_SCOPE``)."""
        return f"api://{self.platform.app_id}/.default"

    @property
    def audiences(self) -> list[str]:
        """The ``aud`` values the platform accepts: its app ID (v2 tokens) and identifier URI (v1 tokens)."""
        return [self.platform.app_id, f"api://{self.platform.app_id}"]

    def service_env(self) -> dict[str, str]:
        """The platform service's (``lkps``) Entra and Graph settings for this tenant, and the CA to trust."""
        return {
            "LKPS_ENTRA_TENANT_ID": self.entra.tenant_id,
            "LKPS_ENTRA_AUDIENCE": ",".join(self.audiences),
            "LKPS_ENTRA_AUTHORITY": self.entra.authority_host,
            "LKPS_GRAPH_URL": self.entra.graph_url,
            "LKPS_GRAPH_CLIENT_ID": self.platform.app_id,
            "LKPS_GRAPH_CLIENT_SECRET": self.platform.secret,
            # the service's HTTP clients and azure-identity's aio transport trust the stand-in's CA through it
            "SSL_CERT_FILE": str(self.entra.ca_file),
        }

    # -- apps -----------------------------------------------------------------------------------------------

    def add_agent(
        self,
        display_name: str = "agent",
        *,
        app_id: str | None = None,
        secret: str | None = None,
        client_scope: bool = True,
    ) -> App:
        """An agent that authenticates with a client secret (the SDK's service-principal mode).

        It holds ``Agent.Register`` and, with ``client_scope``, exposes ``access_as_client`` (clients can be
        pre-authorized for it); ``secret`` defaults to a new one in Entra's shape.
        """
        agent_id = self.entra.register_app(
            app_id, display_name=display_name, exposed_scopes=[CLIENT_SCOPE] if client_scope else []
        ).app_id
        self.entra.assign_role(agent_id, self.platform.app_id, REGISTER_ROLE)
        agent = App(agent_id, display_name, self.entra.add_secret(agent_id, secret))
        self.apps.append(agent)
        return agent

    def add_workload_agent(
        self,
        token_file: str | Path,
        *,
        app_id: str | None = None,
        display_name: str = "agent",
        namespace: str = "agents",
        service_account: str = "agent",
        managed_identity: bool = False,
    ) -> WorkloadIdentity:
        """An agent on AKS with workload identity: its identity trusts the pod's service account, holds
        ``Agent.Register``, and the projected service-account token is written to ``token_file``
        (``AZURE_FEDERATED_TOKEN_FILE``).

        The identity is an app registration exposing ``access_as_client`` (clients can be pre-authorized for
        it), or with ``managed_identity`` a user-assigned managed identity, which has no app registration in
        Graph.
        """
        subject = f"system:serviceaccount:{namespace}:{service_account}"
        if managed_identity:
            agent_id = self.entra.add_managed_identity(app_id, display_name=display_name).app_id
        else:
            agent_id = self.entra.register_app(
                app_id, display_name=display_name, exposed_scopes=[CLIENT_SCOPE]
            ).app_id
        self.entra.add_federated_credential(agent_id, subject=subject)
        self.entra.assign_role(agent_id, self.platform.app_id, REGISTER_ROLE)
        written = self.entra.write_service_account_token(
            token_file, namespace=namespace, service_account=service_account
        )
        identity = WorkloadIdentity(App(agent_id, display_name), namespace, service_account, written)
        self.apps.append(identity.app)
        return identity

    def add_client(
        self,
        display_name: str = "client",
        *,
        authorized_for: Sequence[App | str] = (),
        session_role: bool = True,
    ) -> App:
        """A client app with a client secret, holding ``Session.Start`` (unless ``session_role`` is false) and
        pre-authorized for ``access_as_client`` of each agent in ``authorized_for``."""
        client_id = self.entra.register_app(display_name=display_name).app_id
        if session_role:
            self.entra.assign_role(client_id, self.platform.app_id, SESSION_ROLE)
        for agent in authorized_for:
            self.authorize(client_id, agent)
        client = App(client_id, display_name, self.entra.add_secret(client_id))
        self.apps.append(client)
        return client

    def authorize(self, client: App | str, agent: App | str) -> None:
        """Pre-authorize ``client`` for ``agent``'s ``access_as_client`` (Graph shows it from now on)."""
        self.entra.pre_authorize(_app_id(agent), _app_id(client), [CLIENT_SCOPE])

    def grant(self, app: App | str, role: str) -> None:
        """Give ``app`` the platform's app role ``role``; tokens issued from now on carry it."""
        self.entra.assign_role(_app_id(app), self.platform.app_id, role)

    def revoke(self, app: App | str, role: str) -> None:
        """Take the platform's app role ``role`` from ``app``; tokens issued from now on lack it."""
        self.entra.remove_role(_app_id(app), self.platform.app_id, role)

    # -- tokens ---------------------------------------------------------------------------------------------

    def token(self, app: App, *, scope: str | None = None) -> str:
        """A fresh Entra access token for ``app`` for ``scope`` (default: the platform's)."""
        return client_secret_token(self.entra, app, scope or self.scope)

    async def bearer(self, app: App, *, scope: str | None = None) -> dict[str, str]:
        """``Authorization: Bearer`` with a fresh token for ``app``, got off the event loop."""
        token = await asyncio.to_thread(self.token, app, scope=scope)
        return {"Authorization": f"Bearer {token}"}
