"""Users registering agents with their own (delegated) tokens, as ``az login`` developers do: the token's
client ID is the Azure CLI's, shared by every developer, so it never names the agent. A user registers their
own developer agent (a version 5 UUID of their object ID): two developers never share one, and no user can
register as an application's agent or as another user's."""

from __future__ import annotations

import uuid

from livekit import api

from livekit_platform_testing.tenant import REGISTER_ROLE, SESSION_ROLE, Tenant
from lkps.domain.ids import developer_agent_id
from lkps.settings import Settings
from tests.support.service import (
    AGENT_KEY_ID,
    AGENT_SECRET,
    API_KEY,
    API_SECRET,
    Parties,
    fetch_rows,
    running_app,
)

AZURE_CLI = (
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the Azure CLI's app (client) ID, the same in every tenant
)


def user_bearer(
    tenant: Tenant, oid: str | None, *, via: str = AZURE_CLI, roles: tuple[str, ...] = (REGISTER_ROLE,)
) -> dict[str, str]:
    claims = {} if oid is not None else {"oid": None}
    token = tenant.entra.user_token(
        via,
        tenant.platform.app_id,
        user_oid=oid or str(uuid.uuid4()),
        roles=roles,
        preferred_username="dev@example.com",
        **claims,
    )
    return {"Authorization": f"Bearer {token}"}


async def test_two_developers_on_the_azure_cli_register_two_agents_of_their_own(
    tenant: Tenant, entra_settings: Settings
) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    # agent tokens are signed with the platform's key (the relay takes them; LiveKit does not)
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)
    async with running_app(entra_settings) as app:
        answers = [
            await app.client.post("/api/agent/register", json={}, headers=user_bearer(tenant, oid))
            for oid in (alice, bob, alice)
        ]
        await app.services.audit.flush()
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    names = [a.json()["agent_name"] for a in answers]
    assert names == [developer_agent_id(alice), developer_agent_id(bob), developer_agent_id(alice)]
    assert names[0] != names[1]
    assert AZURE_CLI not in names
    # The worker token is the developer agent's, not the Azure CLI's.
    assert [verifier.verify(a.json()["livekit_token"]).name for a in answers] == names
    rows = await fetch_rows(
        entra_settings.database_url,
        "SELECT entra_app_id, requested_by, client_id FROM agent_registrations",
    )
    assert sorted((r["entra_app_id"], r["requested_by"], r["client_id"]) for r in rows) == sorted(
        [
            (developer_agent_id(alice), alice, AZURE_CLI),
            (developer_agent_id(bob), bob, AZURE_CLI),
            (developer_agent_id(alice), alice, AZURE_CLI),
        ]
    )
    agents = await fetch_rows(
        entra_settings.database_url, "SELECT entra_app_id FROM agents WHERE entra_app_id = :a", a=AZURE_CLI
    )
    assert agents == []


async def test_a_user_signed_in_through_an_agents_app_cannot_register_as_that_agent(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    user = str(uuid.uuid4())
    client = await tenant.bearer(parties.client)
    async with running_app(entra_settings) as app:
        answer = await app.client.post(
            "/api/agent/register", json={}, headers=user_bearer(tenant, user, via=parties.agent.app_id)
        )
        # The agent itself never registered: its sessions are still refused.
        session = await app.client.post(
            "/api/session/start", json={"agent_entra_app_id": parties.agent.app_id}, headers=client
        )
    assert answer.status_code == 200
    assert answer.json()["agent_name"] == developer_agent_id(user) != parties.agent.app_id
    assert session.status_code == 404


async def test_a_developer_agent_gets_its_sessions(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    developer = str(uuid.uuid4())
    client = await tenant.bearer(parties.client)
    async with running_app(entra_settings) as app:
        registered = await app.client.post(
            "/api/agent/register",
            json={"service_config": {"enforce_client_authz": False}},
            headers=user_bearer(tenant, developer),
        )
        agent_name = registered.json()["agent_name"]
        started = await app.client.post(
            "/api/session/start", json={"agent_entra_app_id": agent_name}, headers=client
        )
    assert started.status_code == 200, started.text
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(started.json()["participant_token"])
    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == developer_agent_id(developer)


async def test_a_user_token_without_an_object_id_is_a_400(tenant: Tenant, entra_settings: Settings) -> None:
    async with running_app(entra_settings) as app:
        answer = await app.client.post("/api/agent/register", json={}, headers=user_bearer(tenant, None))
    assert answer.status_code == 400
    assert answer.json()["field"] == "Authorization"


async def test_a_user_without_the_register_role_is_refused_and_revokes_nothing(
    tenant: Tenant, entra_settings: Settings
) -> None:
    async with running_app(entra_settings) as app:
        answer = await app.client.post(
            "/api/agent/register",
            json={},
            headers=user_bearer(tenant, str(uuid.uuid4()), roles=(SESSION_ROLE,)),
        )
    assert answer.status_code == 403
