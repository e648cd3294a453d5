"""The Entra tenant of the whole system: the platform app, the agent (workload identity) and client apps."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from azure.identity import ClientSecretCredential

from livekit_platform_sdk.testing.entra import GRAPH_APP_ID, EntraStandIn

REGISTER_ROLE = "Agent.Register"
SESSION_ROLE = "Session.Start"
CLIENT_SCOPE = "access_as_client"


@dataclass(frozen=True)
class App:
    """An app registration; ``secret`` is empty for identities that only use a federated credential."""

    app_id: str
    display_name: str
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class AgentIdentity:
    """The agent's app registration, federated with a Kubernetes service account (AKS workload identity)."""

    app: App
    namespace: str
    service_account: str
    token_file: Path

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


class Tenant:
    """Sets up the apps in the Entra stand-in, and gets tokens for them through azure-identity."""

    def __init__(self, entra: EntraStandIn, *, platform_app_id: str | None = None) -> None:
        self.entra = entra
        platform_id = entra.register_app(
            platform_app_id,
            display_name="LiveKit Platform Service",
            app_roles=[REGISTER_ROLE, SESSION_ROLE],
        ).app_id
        # The service reads preAuthorizedApplications from Graph with its own client secret.
        entra.assign_role(platform_id, GRAPH_APP_ID, "Application.Read.All")
        self.platform = App(platform_id, "LiveKit Platform Service", entra.add_secret(platform_id))
        self.apps: list[App] = [self.platform]
        """Every app set up here, in order."""

    @property
    def scope(self) -> str:
        """The platform's client-credentials scope (``LIVEKIT_PLATFORM_SCOPE``)."""
        return f"api://{self.platform.app_id}/.default"

    def add_agent(
        self,
        workdir: Path,
        *,
        app_id: str | None = None,
        display_name: str = "demo agent",
        namespace: str = "agents",
        service_account: str = "demo-agent",
    ) -> AgentIdentity:
        """An agent app that exposes ``access_as_client``, holds the register role and trusts its pod's
        service account; the projected service-account token is written to ``workdir``."""
        agent_id = self.entra.register_app(
            app_id or str(uuid.uuid4()), display_name=display_name, exposed_scopes=[CLIENT_SCOPE]
        ).app_id
        self.entra.add_federated_credential(
            agent_id, subject=f"system:serviceaccount:{namespace}:{service_account}"
        )
        self.entra.assign_role(agent_id, self.platform.app_id, REGISTER_ROLE)
        token_file = self.entra.write_service_account_token(
            workdir / f"{service_account}-sa-token", namespace=namespace, service_account=service_account
        )
        identity = AgentIdentity(App(agent_id, display_name), namespace, service_account, token_file)
        self.apps.append(identity.app)
        return identity

    def add_client(self, display_name: str, *, authorized_for: Sequence[str] = ()) -> App:
        """A client app with the session role, pre-authorized for the given agents' ``access_as_client``."""
        client_id = self.entra.register_app(display_name=display_name).app_id
        self.entra.assign_role(client_id, self.platform.app_id, SESSION_ROLE)
        for agent_id in authorized_for:
            self.entra.pre_authorize(agent_id, client_id, [CLIENT_SCOPE])
        client = App(client_id, display_name, self.entra.add_secret(client_id))
        self.apps.append(client)
        return client

    def add_service_principal_agent(self, display_name: str) -> App:
        """An agent that authenticates with a client secret (the SDK's service-principal mode)."""
        agent_id = self.entra.register_app(display_name=display_name, exposed_scopes=[CLIENT_SCOPE]).app_id
        self.entra.assign_role(agent_id, self.platform.app_id, REGISTER_ROLE)
        agent = App(agent_id, display_name, self.entra.add_secret(agent_id))
        self.apps.append(agent)
        return agent

    def token(self, app: App) -> str:
        """A fresh Entra access token for ``app`` (client credentials) to call the platform.

        A new credential each time: azure-identity caches tokens per credential, and callers here want the
        roles the app holds now.
        """
        if not app.secret:
            raise ValueError(
                f"app {app.app_id} ({app.display_name}) has no client secret to get a token with"
            )
        credential = ClientSecretCredential(
            self.entra.tenant_id,
            app.app_id,
            app.secret,
            authority=self.entra.authority_host,
            disable_instance_discovery=True,
            connection_verify=str(self.entra.ca_file),
        )
        try:
            return credential.get_token(self.scope).token
        finally:
            credential.close()
