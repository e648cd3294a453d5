"""An agent counts as registered only while its latest platform token is unexpired and not revoked.

A registration refused for a removed app role (entra mode) revokes the agent at once and in the audit
tables; a later registration makes it active again. An agent that stops renewing expires.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from livekit_platform_testing.tenant import REGISTER_ROLE, App, Tenant
from lkps.settings import Settings, normalize_database_url
from lkps.storage import migrate
from tests.support.service import Parties, fetch_rows, new_agent_id, running_app


class Clock:
    """The service's wall clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def agent(tenant: Tenant) -> App:
    """An agent app of its own holding the register role (the tests take it away)."""
    return tenant.add_agent("agent losing its role")


@pytest.fixture(params=["postgresql", "sqlite"])
def any_entra_settings(request: pytest.FixtureRequest, entra_settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "postgresql":
        return entra_settings
    url = normalize_database_url(f"sqlite:///{tmp_path / 'lkps.db'}")
    migrate.upgrade(url)
    return entra_settings.model_copy(update={"database_url": url})


async def test_a_registration_refused_for_a_removed_role_revokes_the_agent_and_its_audit_rows(
    tenant: Tenant, parties: Parties, agent: App, any_entra_settings: Settings
) -> None:
    settings = any_entra_settings
    body = {"agent_entra_app_id": agent.app_id}
    client = await tenant.bearer(parties.client)
    async with running_app(settings) as app:
        registered = await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(agent))
        assert registered.status_code == 200
        tenant.revoke(agent, REGISTER_ROLE)
        refused = await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(agent))
        assert refused.status_code == 403
        # At once, before the audit writer has touched the database.
        response = await app.client.post("/api/session/start", json=body, headers=client)
        await app.services.audit.flush()

    assert response.status_code == 404
    assert response.json()["error"] == "agent_not_registered"
    assert response.json()["field"] == "agent_entra_app_id"
    detail = response.json()["detail"]
    assert f"agent {agent.app_id}'s registration was revoked at " in detail
    assert "the Entra app role was removed" in detail
    rows = await fetch_rows(
        settings.database_url,
        "SELECT revoked, revoked_at FROM agent_registrations WHERE entra_app_id = :a",
        a=agent.app_id,
    )
    assert [bool(r["revoked"]) for r in rows] == [True]
    assert rows[0]["revoked_at"] is not None
    agents = await fetch_rows(
        settings.database_url, "SELECT revoked_at FROM agents WHERE entra_app_id = :a", a=agent.app_id
    )
    assert agents[0]["revoked_at"] is not None

    # Another replica reads the revocation from the database.
    async with running_app(settings) as other:
        elsewhere = await other.client.post("/api/session/start", json=body, headers=client)
    assert elsewhere.status_code == 404
    assert "was revoked at" in elsewhere.json()["detail"]


async def test_restoring_the_role_and_registering_again_makes_the_agent_active(
    tenant: Tenant, parties: Parties, agent: App, any_entra_settings: Settings
) -> None:
    settings = any_entra_settings
    body = {"agent_entra_app_id": agent.app_id}
    client = await tenant.bearer(parties.client)
    no_authz = {"service_config": {"enforce_client_authz": False}}
    async with running_app(settings) as app:
        await app.client.post("/api/agent/register", json=no_authz, headers=await tenant.bearer(agent))
        tenant.revoke(agent, REGISTER_ROLE)
        await app.client.post("/api/agent/register", json=no_authz, headers=await tenant.bearer(agent))
        revoked = await app.client.post("/api/session/start", json=body, headers=client)
        tenant.grant(agent, REGISTER_ROLE)
        again = await app.client.post(
            "/api/agent/register", json=no_authz, headers=await tenant.bearer(agent)
        )
        assert again.status_code == 200
        response = await app.client.post("/api/session/start", json=body, headers=client)
        await app.services.audit.flush()
    assert revoked.status_code == 404
    assert response.status_code == 200, response.json()

    rows = await fetch_rows(
        settings.database_url,
        "SELECT revoked FROM agent_registrations WHERE entra_app_id = :a",
        a=agent.app_id,
    )
    assert sorted(bool(r["revoked"]) for r in rows) == [False, True]
    agents = await fetch_rows(
        settings.database_url, "SELECT revoked_at FROM agents WHERE entra_app_id = :a", a=agent.app_id
    )
    assert agents == [{"revoked_at": None}]
    async with running_app(settings) as other:
        elsewhere = await other.client.post("/api/session/start", json=body, headers=client)
    assert elsewhere.status_code == 200, elsewhere.json()


async def test_a_client_token_without_the_register_role_revokes_nothing_else(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    body = {"agent_entra_app_id": parties.agent.app_id}
    async with running_app(entra_settings, authorizer=None) as app:
        await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(parties.agent))
        # The client is refused registration under its own app ID; the agent it talks to is untouched.
        refused = await app.client.post(
            "/api/agent/register", json={}, headers=await tenant.bearer(parties.client)
        )
        response = await app.client.post(
            "/api/session/start", json=body, headers=await tenant.bearer(parties.client)
        )
    assert refused.status_code == 403
    assert response.status_code == 200, response.json()


async def test_an_agent_that_stops_renewing_expires_and_renewing_makes_it_active(settings: Settings) -> None:
    agent_id = new_agent_id()
    clock = Clock()
    short = settings.model_copy(update={"agent_token_ttl": 120})
    async with running_app(short, clock=clock) as app:
        await app.register(agent_id, enforce=False)
        assert (await app.start_session(agent_id)).status_code == 200
        clock.offset = 121
        expired = await app.start_session(agent_id)
        await app.services.audit.flush()
        # Another replica sees the same expiry in the database.
        async with running_app(short, clock=clock) as other:
            elsewhere = await other.start_session(agent_id)
        await app.register(agent_id, enforce=False)
        renewed = await app.start_session(agent_id)

    assert expired.status_code == 404
    assert expired.json()["error"] == "agent_not_registered"
    detail = expired.json()["detail"]
    assert f"agent {agent_id}'s registration expired at " in detail
    assert "the agent stopped renewing; is it running?" in detail
    assert elsewhere.status_code == 404
    assert "expired at" in elsewhere.json()["detail"]
    assert renewed.status_code == 200


async def test_the_expiry_is_stored_with_the_agent(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        await app.services.audit.flush()
    agents = await fetch_rows(
        settings.database_url,
        "SELECT token_expires_at FROM agents WHERE entra_app_id = :a",
        a=agent_id,
    )
    registrations = await fetch_rows(
        settings.database_url,
        "SELECT expires_at FROM agent_registrations WHERE entra_app_id = :a",
        a=agent_id,
    )
    assert agents[0]["token_expires_at"] == registrations[0]["expires_at"]
    assert agents[0]["token_expires_at"] > dt.datetime.now(dt.timezone.utc)
