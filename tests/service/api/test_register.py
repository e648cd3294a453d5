"""POST /api/agent/register in gateway mode: the worker token, the registry, the audit rows, each 400."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from livekit import api

from lkps.domain.ids import Ids
from lkps.settings import Settings
from lkps.speedups.caches import FastIds
from tests.support.service import (
    AGENT_KEY_ID,
    AGENT_SECRET,
    fetch_rows,
    gateway_headers,
    new_agent_id,
    running_app,
)


async def test_register_returns_a_worker_token_with_agent_grants_for_the_callers_app_id(
    settings: Settings,
) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        response = await app.register(agent_id)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"livekit_token", "livekit_url", "expires_in"}
    # the relay, at the URL the agent reached the service at (LKPS_RELAY_URL unset): never LiveKit itself
    assert body["livekit_url"] == "ws://lkps"
    assert body["expires_in"] == 3600
    claims = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET).verify(body["livekit_token"])
    assert claims.identity.startswith(f"agent-{agent_id}-")
    registration_id = claims.identity.removeprefix(f"agent-{agent_id}-")
    parsed = uuid.UUID(registration_id)  # a random UUID in canonical (lower-case, hyphenated) form
    assert (str(parsed), parsed.version, parsed.variant) == (registration_id, 4, uuid.RFC_4122)
    assert claims.name == agent_id
    assert claims.video is not None
    assert claims.video.agent is True
    assert (claims.video.can_publish, claims.video.can_subscribe, claims.video.can_publish_data) == (
        True,
        True,
        True,
    )
    assert not claims.video.room_join
    assert claims.video.room == ""


async def test_each_registration_gets_a_distinct_worker_identity(settings: Settings) -> None:
    agent_id = new_agent_id()
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)
    async with running_app(settings) as app:
        tokens = [(await app.register(agent_id)).json()["livekit_token"] for _ in range(3)]
    assert len({verifier.verify(t).identity for t in tokens}) == 3


async def test_token_lifetime_follows_lkps_agent_token_ttl(settings: Settings) -> None:
    short = settings.model_copy(update={"agent_token_ttl": 120})
    async with running_app(short) as app:
        before = int(time.time())
        response = await app.register(new_agent_id())
    assert response.json()["expires_in"] == 120
    import jwt

    payload = jwt.decode(
        response.json()["livekit_token"], AGENT_SECRET, algorithms=["HS256"], issuer=AGENT_KEY_ID
    )
    assert payload["exp"] - payload["nbf"] == 120
    assert before <= payload["nbf"] <= before + 2


async def test_registration_is_audited_with_who_when_and_expiry(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        token = (await app.register(agent_id, enforce=False)).json()["livekit_token"]
        await app.services.audit.flush()

    identity = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET).verify(token).identity
    rows = await fetch_rows(
        settings.database_url, "SELECT * FROM agent_registrations WHERE entra_app_id = :a", a=agent_id
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["worker_identity"] == identity
    assert row["client_id"] == agent_id
    assert row["requested_by"] == gateway_headers()["user-id"]
    assert row["requester_email"] == "jane.doe@example.com"
    assert row["identity_mode"] == "gateway"
    assert row["enforce_client_authz"] is False
    assert row["revoked"] is False
    assert row["expires_at"] - row["issued_at"] == dt.timedelta(seconds=3600)
    agents = await fetch_rows(
        settings.database_url, "SELECT * FROM agents WHERE entra_app_id = :a", a=agent_id
    )
    assert agents[0]["enforce_client_authz"] is False
    assert agents[0]["last_worker_identity"] == identity


async def test_reregistration_updates_the_agent_and_counts_registrations(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        await app.services.audit.flush()
        await app.register(agent_id, enforce=True)
        await app.services.audit.flush()
    agents = await fetch_rows(
        settings.database_url, "SELECT * FROM agents WHERE entra_app_id = :a", a=agent_id
    )
    assert agents[0]["enforce_client_authz"] is True
    assert agents[0]["registration_count"] == 2


async def test_enforce_client_authz_defaults_to_true_without_a_body(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        response = await app.client.post("/api/agent/register", headers=gateway_headers(client_id=agent_id))
        assert response.status_code == 200
        await app.services.audit.flush()
    rows = await fetch_rows(settings.database_url, "SELECT enforce_client_authz FROM agents")
    assert rows == [{"enforce_client_authz": True}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service_config": {"enforce_client_authz": "yes"}}, "service_config.enforce_client_authz"),
        ({"service_config": {"enforce_client_authz": 1}}, "service_config.enforce_client_authz"),
        ({"service_config": []}, "service_config"),
        ([], "body"),
    ],
)
async def test_register_rejects_a_malformed_body_naming_the_field(
    settings: Settings, body: object, field: str
) -> None:
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register", json=body, headers=gateway_headers(client_id=new_agent_id())
        )
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["error"] == "bad_request"


async def test_register_rejects_invalid_json(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register", content=b"{not json", headers=gateway_headers(client_id=new_agent_id())
        )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


async def test_register_without_the_client_id_header_is_400_naming_it(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register", json={}, headers=gateway_headers(client_id=None)
        )
    assert response.status_code == 400
    assert response.json()["field"] == "client-id"
    assert "client-id" in response.json()["detail"]


async def test_register_with_a_client_id_that_is_not_a_guid_is_400(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register", json={}, headers=gateway_headers(client_id="not-a-guid")
        )
    assert response.status_code == 400
    assert response.json()["field"] == "client-id"


async def test_register_rejects_an_oversized_body_with_413(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.client.post(
            "/api/agent/register",
            content=b'{"pad": "' + b"x" * 70_000 + b'"}',
            headers=gateway_headers(client_id=new_agent_id()),
        )
    assert response.status_code == 413
    assert response.json()["field"] == "body"


async def test_gateway_header_names_are_configurable(settings: Settings) -> None:
    custom = settings.model_copy(update={"gateway_client_id_header": "x-app-id"})
    agent_id = new_agent_id()
    async with running_app(custom) as app:
        response = await app.client.post("/api/agent/register", json={}, headers={"x-app-id": agent_id})
    assert response.status_code == 200
    verifier = api.TokenVerifier(AGENT_KEY_ID, AGENT_SECRET)
    assert verifier.verify(response.json()["livekit_token"]).name == agent_id


async def test_an_oversized_identity_header_is_cut_to_fit_and_blocks_no_other_row(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        long = await app.client.post(
            "/api/agent/register",
            json={},
            headers=gateway_headers(client_id=agent_id, user_id="u" * 1000, email="e" * 1000),
        )
        normal = await app.register(agent_id)
        await app.services.audit.flush()
        assert app.services.audit.dropped == 0
    assert (long.status_code, normal.status_code) == (200, 200)
    rows = await fetch_rows(
        settings.database_url, "SELECT length(requested_by) AS n FROM agent_registrations ORDER BY n"
    )
    assert [r["n"] for r in rows] == [36, 256]


@pytest.mark.parametrize("made_by", [Ids, FastIds])
def test_registration_ids_are_distinct_version_4_uuids(made_by: type[Ids]) -> None:
    maker = made_by()
    ids = [maker.new() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert (str(parsed), parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)
