"""``GET /api/admin/agents`` and ``GET /api/admin/sessions``: what they show, their filters and pages, and
who may read them (the admin app role in entra mode; configured client IDs in gateway mode, else 404)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from livekit_platform_testing.tenant import ADMIN_ROLE, Tenant
from lkps.settings import Settings
from tests.support.service import Parties, client_headers, gateway_headers, new_agent_id, running_app

ADMIN = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99"


def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"gateway_admin_client_ids": (ADMIN,)})


def as_admin() -> dict[str, str]:
    return gateway_headers(client_id=ADMIN)


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=as_admin())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_agents_show_registration_state_expiry_and_enforcement(settings: Settings) -> None:
    now = [time.time() - 7200]  # the first agent registers two hours ago: its hour-long token has expired
    stale, live = new_agent_id(), new_agent_id()
    async with running_app(admin_settings(settings), clock=lambda: now[0]) as app:
        assert (await app.register(stale, enforce=False)).status_code == 200
        now[0] = time.time()
        assert (await app.register(live)).status_code == 200
        assert (await app.register(live)).status_code == 200
        await app.services.audit.flush()
        everyone = await get(app.client, "/api/admin/agents")
        expired = await get(app.client, "/api/admin/agents", state="expired")
        registered = await get(app.client, "/api/admin/agents", state="registered")

    rows = {row["entra_app_id"]: row for row in everyone["agents"]}
    assert rows[stale]["state"] == "expired"
    assert rows[stale]["enforce_client_authz"] is False
    assert rows[live]["state"] == "registered"
    assert rows[live]["enforce_client_authz"] is True
    assert rows[live]["registration_count"] == 2
    assert rows[live]["revoked_at"] is None
    assert rows[live]["token_expires_at"] > rows[live]["last_registered_at"]
    assert rows[live]["last_worker_identity"].startswith(f"agent-{live}-")
    assert [row["entra_app_id"] for row in expired["agents"]] == [stale]
    assert [row["entra_app_id"] for row in registered["agents"]] == [live]
    assert everyone["next_offset"] is None


async def test_sessions_filter_by_agent_state_and_time_newest_first_a_page_at_a_time(
    settings: Settings,
) -> None:
    now = [time.time() - 1800]
    one, other = new_agent_id(), new_agent_id()
    async with running_app(admin_settings(settings), clock=lambda: now[0]) as app:
        for agent in (one, other):
            assert (await app.register(agent, enforce=False)).status_code == 200
        assert (await app.start_session(one)).status_code == 200  # half an hour ago
        now[0] = time.time()
        rooms = []
        for _ in range(3):
            response = await app.start_session(one)
            rooms.append(response.json()["room_name"])
            now[0] += 1
        assert (await app.start_session(other)).status_code == 200
        await app.services.audit.flush()
        first = await get(app.client, "/api/admin/sessions", agent=one, limit=2)
        second = await get(app.client, "/api/admin/sessions", agent=one, limit=2, offset=first["next_offset"])
        recent = await get(
            app.client,
            "/api/admin/sessions",
            agent=one,
            since=_iso(time.time() - 600),
            until=_iso(now[0] + 60),
        )
        requested = await get(app.client, "/api/admin/sessions", state="requested")
        active = await get(app.client, "/api/admin/sessions", state="active")

    assert [row["room_name"] for row in first["sessions"]] == rooms[::-1][:2]
    assert first["next_offset"] == 2
    assert second["sessions"][0]["room_name"] == rooms[0]
    assert len(second["sessions"]) == 2  # and the one from half an hour ago
    assert second["next_offset"] is None
    assert {row["room_name"] for row in recent["sessions"]} == set(rooms)
    assert all(row["agent_entra_app_id"] == one for row in first["sessions"] + second["sessions"])
    assert len(requested["sessions"]) == 5
    assert requested["sessions"][0]["state"] == "requested"
    assert requested["sessions"][0]["participant_identity"] == "jane.doe@example.com"
    assert active["sessions"] == []


async def test_bad_query_parameters_are_400_naming_the_parameter(settings: Settings) -> None:
    cases = {
        "/api/admin/sessions?limit=501": "limit",
        "/api/admin/sessions?limit=0": "limit",
        "/api/admin/sessions?limit=" + "9" * 5000: "limit",
        "/api/admin/agents?offset=100001": "offset",
        "/api/admin/sessions?since=2026-01-01T00:00:00": "since",
        "/api/admin/sessions?until=yesterday": "until",
        "/api/admin/sessions?agent=not-a-guid": "agent",
        "/api/admin/sessions?state=running": "state",
        "/api/admin/agents?state=active": "state",
        "/api/admin/agents?agent=" + new_agent_id(): "agent",
        "/api/admin/sessions?state=active&state=failed": "state",
    }
    async with running_app(admin_settings(settings)) as app:
        for path, field in cases.items():
            response = await app.client.get(path, headers=as_admin())
            assert response.status_code == 400, path
            assert response.json()["field"] == field, path


async def test_gateway_mode_answers_404_unless_admins_are_configured_and_403_to_others(
    settings: Settings,
) -> None:
    async with running_app(settings) as app:
        for path in ("/api/admin/agents", "/api/admin/sessions"):
            assert (await app.client.get(path, headers=as_admin())).status_code == 404
    async with running_app(admin_settings(settings)) as app:
        refused = await app.client.get("/api/admin/agents", headers=client_headers())
        assert refused.status_code == 403
        assert refused.json()["field"] == "client-id"
        assert (
            await app.client.get("/api/admin/agents", headers=gateway_headers(client_id=None))
        ).status_code == 403
        assert (await app.client.get("/api/admin/agents", headers=as_admin())).status_code == 200
        # read-only
        assert (await app.client.post("/api/admin/agents", headers=as_admin())).status_code == 405
        assert (await app.client.delete("/api/admin/sessions", headers=as_admin())).status_code == 405


async def test_entra_mode_requires_the_admin_app_role_and_shows_revocations(
    tenant: Tenant, parties: Parties, entra_settings: Settings
) -> None:
    operator = tenant.add_client("operator", session_role=False)
    revoked = tenant.add_agent("revoked agent")
    async with running_app(entra_settings, authorizer=None) as app:
        assert (
            await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(revoked))
        ).status_code == 200
        tenant.revoke(revoked, "Agent.Register")
        refused = await app.client.post("/api/agent/register", json={}, headers=await tenant.bearer(revoked))
        assert refused.status_code == 403
        await app.services.audit.flush()

        assert (await app.client.get("/api/admin/agents")).status_code == 401
        without_role = await app.client.get("/api/admin/agents", headers=await tenant.bearer(operator))
        assert without_role.status_code == 403
        assert ADMIN_ROLE in without_role.json()["detail"]
        agent_token = await app.client.get("/api/admin/sessions", headers=await tenant.bearer(parties.agent))
        assert agent_token.status_code == 403
        tenant.grant(operator, ADMIN_ROLE)
        allowed = await app.client.get("/api/admin/agents", headers=await tenant.bearer(operator))
        sessions = await app.client.get("/api/admin/sessions", headers=await tenant.bearer(operator))

    assert allowed.status_code == 200, allowed.text
    row = next(r for r in allowed.json()["agents"] if r["entra_app_id"] == revoked.app_id)
    assert row["state"] == "revoked"
    assert row["revoked_at"] is not None
    assert sessions.status_code == 200


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
