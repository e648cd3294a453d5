"""The one tenant wiring: what each kind of app holds, proven with tokens from the real azure-identity
credentials and with what Microsoft Graph answers the platform."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from azure.identity import ClientSecretCredential, WorkloadIdentityCredential

from livekit_platform_testing.entra import GRAPH_RESOURCE, GRAPH_SCOPE, EntraStandIn
from livekit_platform_testing.tenant import (
    ADMIN_ROLE,
    CLIENT_SCOPE,
    REGISTER_ROLE,
    SESSION_ROLE,
    App,
    Tenant,
    client_secret_token,
)


@pytest.fixture
def trust_standin(monkeypatch: pytest.MonkeyPatch, entra_standin: EntraStandIn) -> None:
    """azure-identity's sync transport reads REQUESTS_CA_BUNDLE per request; this machine presets it."""
    for name, value in entra_standin.ca_env().items():
        monkeypatch.setenv(name, value)


def _platform_claims(tenant: Tenant, token: str) -> dict[str, object]:
    return tenant.entra.verify(token, audience=tenant.platform.app_id)


def _graph_application(tenant: Tenant, app_id: str) -> httpx.Response:
    """``applications(appId=...)?$select=api`` as the platform service reads it, with its own Graph token."""
    token = client_secret_token(tenant.entra, tenant.platform, GRAPH_SCOPE)
    with httpx.Client(verify=tenant.entra.tls.client_context()) as http:
        return http.get(
            f"{tenant.entra.graph_url}/applications(appId='{app_id}')",
            params={"$select": "api"},
            headers={"Authorization": f"Bearer {token}"},
        )


def test_the_platform_app_has_its_app_roles_graph_read_access_and_a_working_secret(tenant: Tenant) -> None:
    platform = tenant.entra.app(tenant.platform.app_id)
    assert set(platform.app_roles) == {REGISTER_ROLE, SESSION_ROLE, ADMIN_ROLE}
    assert tenant.scope == f"api://{platform.app_id}/.default"
    assert tenant.audiences == [platform.app_id, f"api://{platform.app_id}"]

    graph_token = client_secret_token(tenant.entra, tenant.platform, GRAPH_SCOPE)

    claims = tenant.entra.verify(graph_token, audience=GRAPH_RESOURCE)
    assert (claims["appid"], claims["roles"]) == (platform.app_id, ["Application.Read.All"])
    assert tenant.apps[0] == tenant.platform


def test_an_agent_token_for_the_platform_carries_the_register_role_only(tenant: Tenant) -> None:
    agent = tenant.add_agent("agent with a secret")

    claims = _platform_claims(tenant, tenant.token(agent))

    assert (claims["azp"], claims["roles"]) == (agent.app_id, [REGISTER_ROLE])
    assert tenant.entra.app(agent.app_id).exposed_scopes.keys() == {CLIENT_SCOPE}
    assert agent in tenant.apps


def test_a_client_holds_the_session_role_and_graph_lists_it_as_pre_authorized_for_its_agents(
    tenant: Tenant,
) -> None:
    agent = tenant.add_agent("agent clients call")
    other = tenant.add_agent("agent nobody calls")
    client = tenant.add_client("client", authorized_for=[agent])

    claims = _platform_claims(tenant, tenant.token(client))
    seen = _graph_application(tenant, agent.app_id)
    unseen = _graph_application(tenant, other.app_id)

    assert claims["roles"] == [SESSION_ROLE]
    scope_id = tenant.entra.app(agent.app_id).exposed_scopes[CLIENT_SCOPE]
    assert seen.json()["api"]["preAuthorizedApplications"] == [
        {"appId": client.app_id, "delegatedPermissionIds": [scope_id]}
    ]
    assert unseen.json()["api"]["preAuthorizedApplications"] == []


def test_authorizing_later_shows_in_graph_and_an_agent_without_the_scope_exposes_none(tenant: Tenant) -> None:
    agent = tenant.add_agent("agent", client_scope=False)
    late = tenant.add_client("late client")

    assert _graph_application(tenant, agent.app_id).json()["api"]["oauth2PermissionScopes"] == []
    with pytest.raises(ValueError, match="exposes"):
        tenant.authorize(late, agent)
    scoped = tenant.add_agent("agent with the scope")
    tenant.authorize(late, scoped)
    pre_authorized = _graph_application(tenant, scoped.app_id).json()["api"]["preAuthorizedApplications"]
    assert [entry["appId"] for entry in pre_authorized] == [late.app_id]


def test_a_client_without_the_session_role_gets_a_token_without_roles(tenant: Tenant) -> None:
    client = tenant.add_client("client without the role", session_role=False)

    assert "roles" not in _platform_claims(tenant, tenant.token(client))


def test_revoke_and_grant_change_the_roles_of_the_next_token(tenant: Tenant) -> None:
    agent = tenant.add_agent("agent losing its role")

    tenant.revoke(agent, REGISTER_ROLE)
    revoked = _platform_claims(tenant, tenant.token(agent))
    tenant.grant(agent.app_id, REGISTER_ROLE)
    restored = _platform_claims(tenant, tenant.token(agent))

    assert "roles" not in revoked
    assert restored["roles"] == [REGISTER_ROLE]


@pytest.mark.usefixtures("trust_standin")
@pytest.mark.parametrize("managed_identity", [False, True], ids=["app-registration", "managed-identity"])
def test_a_workload_agent_signs_in_with_its_projected_token_through_workload_identity(
    tenant: Tenant, tmp_path: Path, managed_identity: bool
) -> None:
    identity = tenant.add_workload_agent(
        tmp_path / "tokens" / "azure-identity-token",
        display_name="agent on AKS",
        namespace="voice",
        service_account="support-agent",
        managed_identity=managed_identity,
    )
    credential = WorkloadIdentityCredential(
        tenant_id=tenant.entra.tenant_id,
        client_id=identity.app.app_id,
        token_file_path=str(identity.token_file),
        authority=tenant.entra.authority_host,
    )

    claims = _platform_claims(tenant, credential.get_token(tenant.scope).token)

    assert (claims["azp"], claims["roles"]) == (identity.app.app_id, [REGISTER_ROLE])
    assert identity.subject == "system:serviceaccount:voice:support-agent"
    projected = jwt.decode(identity.token_file.read_text(), options={"verify_signature": False})
    assert projected["sub"] == identity.subject
    assert identity.app.secret == ""
    registration = tenant.entra.app(identity.app.app_id)
    assert registration.managed_identity is managed_identity
    # Graph knows app registrations only: a managed identity cannot be pre-authorized for.
    assert _graph_application(tenant, identity.app.app_id).status_code == (404 if managed_identity else 200)


def test_fixed_app_ids_are_kept_and_a_second_tenant_on_another_stand_in_mirrors_them(
    entra_standin: EntraStandIn, tenant: Tenant
) -> None:
    agent = tenant.add_agent("agent")
    platform_id = str(uuid.uuid4())

    with EntraStandIn(tenant_id=entra_standin.tenant_id, tls=entra_standin.tls) as other:
        mirror = Tenant(other, platform_app_id=platform_id)
        copy = mirror.add_agent("agent", app_id=agent.app_id, secret=agent.secret)
        token = mirror.token(copy)

        assert mirror.platform.app_id == platform_id
        assert copy == agent
        assert other.verify(token, audience=platform_id)["azp"] == agent.app_id
    # Same tenant ID, app ID and secret, another signing key: the first stand-in rejects it.
    with pytest.raises(jwt.PyJWTError):
        entra_standin.verify(token, audience=platform_id)


def test_a_token_for_an_app_without_a_secret_names_the_app_and_the_fix(tenant: Tenant) -> None:
    app = App(str(uuid.uuid4()), "identity with a federated credential only")

    with pytest.raises(ValueError, match="has no client secret") as raised:
        tenant.token(app)

    assert app.app_id in str(raised.value)
    assert "federated credential" in str(raised.value)


def test_service_env_points_the_service_at_this_tenant_and_its_graph_credential_works(tenant: Tenant) -> None:
    env = tenant.service_env()

    assert env["LKPS_ENTRA_TENANT_ID"] == tenant.entra.tenant_id
    assert env["LKPS_ENTRA_AUDIENCE"].split(",") == tenant.audiences
    assert (env["LKPS_ENTRA_AUTHORITY"], env["LKPS_GRAPH_URL"]) == (
        tenant.entra.authority_host,
        tenant.entra.graph_url,
    )
    credential = ClientSecretCredential(
        env["LKPS_ENTRA_TENANT_ID"],
        env["LKPS_GRAPH_CLIENT_ID"],
        env["LKPS_GRAPH_CLIENT_SECRET"],
        authority=env["LKPS_ENTRA_AUTHORITY"],
        disable_instance_discovery=True,
        connection_verify=env["SSL_CERT_FILE"],
    )
    token = credential.get_token(GRAPH_SCOPE).token
    assert tenant.entra.verify(token, audience=GRAPH_RESOURCE)["roles"] == ["Application.Read.All"]


async def test_bearer_gets_the_token_off_the_event_loop(tenant: Tenant) -> None:
    agent = tenant.add_agent("async agent")

    headers = await tenant.bearer(agent)

    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert _platform_claims(tenant, token)["azp"] == agent.app_id
