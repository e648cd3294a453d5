"""Identity mode ``entra`` and the Graph authorization check, against the Entra/Graph stand-in.

Callers get real tokens from the stand-in through azure-identity; the service validates them itself and asks
Graph (through azure-identity's ``ClientSecretCredential``) which clients an agent pre-authorized.
"""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from azure.identity import ManagedIdentityCredential
from livekit import api

from demo.processes import free_port
from livekit_platform_testing.entra import EntraStandIn
from livekit_platform_testing.tenant import REGISTER_ROLE, SESSION_ROLE, Tenant
from lkps.settings import Settings
from tests.support.service import AGENT_KEY_ID, AGENT_SECRET, API_KEY, API_SECRET, Parties, running_app


def worker_claims(response_json: dict[str, object]) -> api.access_token.Claims:
    return api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET).verify(str(response_json["livekit_token"]))


async def test_an_agent_registers_with_its_entra_token_as_its_app_id(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    headers = await tenant.bearer(parties.agent)
    async with running_app(entra_settings) as app:
        response = await app.client.post("/api/agent/register", json={}, headers=headers)
    assert response.status_code == 200
    claims = worker_claims(response.json())
    assert claims.name == parties.agent.app_id
    assert claims.identity.startswith(f"agent-{parties.agent.app_id}-")


async def test_spoofed_identity_headers_are_ignored_in_entra_mode(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    headers = await tenant.bearer(parties.agent)
    headers.update(
        {"client-id": parties.client.app_id, "user-id": "spoofed", "x-user-email": "ceo@example.com"}
    )
    async with running_app(entra_settings) as app:
        registered = await app.client.post("/api/agent/register", json={}, headers=headers)
        no_token = await app.client.post(
            "/api/agent/register", json={}, headers={"client-id": parties.agent.app_id}
        )
    assert worker_claims(registered.json()).name == parties.agent.app_id
    assert no_token.status_code == 401
    assert no_token.json()["field"] == "Authorization"


async def test_a_token_without_the_register_role_is_403_naming_the_role(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    headers = await tenant.bearer(parties.client)  # holds Session.Start only
    async with running_app(entra_settings) as app:
        response = await app.client.post("/api/agent/register", json={}, headers=headers)
    assert response.status_code == 403
    assert REGISTER_ROLE in response.json()["detail"]


async def test_removing_the_role_revokes_at_the_next_registration(
    tenant: Tenant, entra_settings: Settings
) -> None:
    revoked = tenant.add_agent("revoked agent")
    before = await tenant.bearer(revoked)
    tenant.revoke(revoked, REGISTER_ROLE)
    after = await tenant.bearer(revoked)
    async with running_app(entra_settings) as app:
        first = await app.client.post("/api/agent/register", json={}, headers=before)
        second = await app.client.post("/api/agent/register", json={}, headers=after)
    assert first.status_code == 200
    assert second.status_code == 403


@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        ("Basic abc", "Bearer"),
        ("Bearer not-a-jwt", "not a JWT"),
    ],
)
async def test_malformed_authorization_is_401(
    entra_settings: Settings, authorization: str, says: str
) -> None:
    async with running_app(entra_settings) as app:
        response = await app.client.post(
            "/api/agent/register", json={}, headers={"Authorization": authorization}
        )
    assert response.status_code == 401
    assert says in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_for_another_audience_is_401(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    headers = await tenant.bearer(parties.agent, scope=f"api://{parties.agent.app_id}/.default")
    async with running_app(entra_settings) as app:
        response = await app.client.post("/api/agent/register", json={}, headers=headers)
    assert response.status_code == 401
    assert "audience" in response.json()["detail"]


async def test_a_token_from_another_tenant_is_401(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    with EntraStandIn(tenant_id=tenant.entra.tenant_id) as impostor:
        # Same tenant ID and app IDs, different signing key: only the signature tells them apart.
        forger = Tenant(impostor, platform_app_id=tenant.platform.app_id)
        forger.add_agent(app_id=parties.agent.app_id, secret=parties.agent.secret)
        forged = await asyncio.to_thread(forger.token, parties.agent)
    async with running_app(entra_settings) as app:
        response = await app.client.post(
            "/api/agent/register", json={}, headers={"Authorization": f"Bearer {forged}"}
        )
    assert response.status_code == 401


async def test_an_expired_token_is_401(tenant: Tenant, parties: Parties, entra_settings: Settings) -> None:
    # Valid through app start-up on a loaded machine; the test then waits out its real exp.
    with EntraStandIn(tenant_id=tenant.entra.tenant_id, token_lifetime=6, tls=tenant.entra.tls) as short:
        shortlived = Tenant(short, platform_app_id=tenant.platform.app_id)
        shortlived.add_agent(app_id=parties.agent.app_id, secret=parties.agent.secret)
        token = await asyncio.to_thread(shortlived.token, parties.agent)
        settings = entra_settings.model_copy(
            update={
                "entra_authority": short.authority_host,
                "entra_issuers": (short.issuer,),
                "entra_leeway": 0,
            }
        )
        async with running_app(settings) as app:
            headers = {"Authorization": f"Bearer {token}"}
            fresh = await app.client.post("/api/agent/register", json={}, headers=headers)
            expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
            await asyncio.sleep(max(0.0, expires_at - time.time()) + 1.1)
            expired = await app.client.post("/api/agent/register", json={}, headers=headers)
    assert fresh.status_code == 200
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_unreachable_signing_keys_are_503(entra_settings: Settings) -> None:
    settings = entra_settings.model_copy(update={"entra_authority": f"https://127.0.0.1:{free_port()}"})
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register", json={}, headers={"Authorization": f"Bearer {_UNSIGNED_WITH_KID}"}
        )
    assert response.status_code == 503
    assert response.json()["error"] == "identity_provider_unavailable"


# A syntactically valid JWT naming a key ID; it never gets as far as a signature check.
_UNSIGNED_WITH_KID = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"


async def test_a_pre_authorized_client_starts_a_session_and_graph_is_asked_once(
    tenant: Tenant, parties: Parties, entra_settings: Settings, graph_calls: None
) -> None:
    agent_headers = await tenant.bearer(parties.agent)
    client_headers = await tenant.bearer(parties.client)
    body = {"agent_entra_app_id": parties.agent.app_id, "metadata": {"language": "en"}}
    async with running_app(entra_settings, authorizer=None) as app:
        assert (
            await app.client.post("/api/agent/register", json={}, headers=agent_headers)
        ).status_code == 200
        first = await app.client.post("/api/session/start", json=body, headers=client_headers)
        second = await app.client.post("/api/session/start", json=body, headers=client_headers)
    assert first.status_code == 200, first.json()
    assert second.status_code == 200
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(first.json()["participant_token"])
    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == parties.agent.app_id
    graph = [r for r in tenant.entra.graph_requests if parties.agent.app_id in r.path]
    assert [(r.caller_app_id, r.status) for r in graph] == [(tenant.platform.app_id, 200)]


async def test_a_client_that_is_not_pre_authorized_is_403_even_when_spoofing_headers(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    agent_headers = await tenant.bearer(parties.agent)
    stranger_headers = await tenant.bearer(parties.stranger)
    stranger_headers["client-id"] = parties.client.app_id  # pretends to be the authorized client
    body = {"agent_entra_app_id": parties.agent.app_id}
    async with running_app(entra_settings, authorizer=None) as app:
        await app.client.post("/api/agent/register", json={}, headers=agent_headers)
        response = await app.client.post("/api/session/start", json=body, headers=stranger_headers)
    assert response.status_code == 403
    assert parties.stranger.app_id in response.json()["detail"]
    assert "Authorized client applications" in response.json()["detail"]


async def test_a_denial_is_rechecked_after_the_negative_ttl(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    late = tenant.add_client("late client")
    agent_headers = await tenant.bearer(parties.agent)
    late_headers = await tenant.bearer(late)
    body = {"agent_entra_app_id": parties.agent.app_id}
    settings = entra_settings.model_copy(update={"graph_negative_cache_ttl": 0.0})
    async with running_app(settings, authorizer=None) as app:
        await app.client.post("/api/agent/register", json={}, headers=agent_headers)
        denied = await app.client.post("/api/session/start", json=body, headers=late_headers)
        tenant.authorize(late, parties.agent)
        allowed = await app.client.post("/api/session/start", json=body, headers=late_headers)
    assert (denied.status_code, allowed.status_code) == (403, 200)


async def test_a_denial_is_cached_within_the_negative_ttl(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    late = tenant.add_client("cached client")
    agent_headers = await tenant.bearer(parties.agent)
    late_headers = await tenant.bearer(late)
    body = {"agent_entra_app_id": parties.agent.app_id}
    async with running_app(entra_settings, authorizer=None) as app:
        await app.client.post("/api/agent/register", json={}, headers=agent_headers)
        denied = await app.client.post("/api/session/start", json=body, headers=late_headers)
        tenant.authorize(late, parties.agent)
        still_denied = await app.client.post("/api/session/start", json=body, headers=late_headers)
    assert (denied.status_code, still_denied.status_code) == (403, 403)


async def test_an_agent_unknown_to_graph_admits_no_client(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    ghost = tenant.add_agent("agent without scope", client_scope=False)
    client_headers = await tenant.bearer(parties.client)
    async with running_app(entra_settings, authorizer=None) as app:
        await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(ghost))
        response = await app.client.post(
            "/api/session/start", json={"agent_entra_app_id": ghost.app_id}, headers=client_headers
        )
    assert response.status_code == 403
    assert "exposes no enabled access_as_client scope" in response.json()["detail"]


async def test_a_managed_identity_agent_is_403_explaining_it_needs_an_app_registration(
    tenant: Tenant, parties: Parties, entra_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A managed identity has no app registration, so Graph answers 404 and no client can be pre-authorized.
    identity = tenant.entra.add_managed_identity(display_name="agent pod identity")
    tenant.grant(identity.app_id, REGISTER_ROLE)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", tenant.entra.imds_url)
    credential = ManagedIdentityCredential(client_id=identity.app_id)
    token = await asyncio.to_thread(credential.get_token, f"api://{tenant.platform.app_id}/.default")
    client_headers = await tenant.bearer(parties.client)
    async with running_app(entra_settings, authorizer=None) as app:
        registered = await app.client.post(
            "/api/agent/register", json={}, headers={"Authorization": f"Bearer {token.token}"}
        )
        assert registered.status_code == 200
        response = await app.client.post(
            "/api/session/start", json={"agent_entra_app_id": identity.app_id}, headers=client_headers
        )
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "has no app registration in Microsoft Graph" in detail
    assert "enforce_client_authz=false" in detail


async def test_a_session_token_without_the_session_role_is_403(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    headers = await tenant.bearer(parties.agent)  # holds Agent.Register only
    async with running_app(entra_settings, authorizer=None) as app:
        response = await app.client.post(
            "/api/session/start", json={"agent_entra_app_id": parties.agent.app_id}, headers=headers
        )
    assert response.status_code == 403
    assert SESSION_ROLE in response.json()["detail"]
