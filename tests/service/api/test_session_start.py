"""POST /api/session/start: room naming, the token's room config and dispatch, authz, each error."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from typing import Any

import pytest
from livekit import api
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from lkps.auth.graph import GraphUnavailableError
from lkps.settings import Settings
from tests.support.service import (
    API_KEY,
    API_SECRET,
    CLIENT_ID,
    StaticAuthorizer,
    client_headers,
    fetch_rows,
    gateway_headers,
    new_agent_id,
    running_app,
)


def verify(token: str) -> api.access_token.Claims:
    return api.TokenVerifier(API_KEY, API_SECRET).verify(token)


async def test_session_start_returns_a_room_and_a_token_that_dispatches_the_agent(settings: Settings) -> None:
    agent_id = new_agent_id()
    authorizer = StaticAuthorizer({(agent_id, CLIENT_ID)})
    async with running_app(settings, authorizer=authorizer) as app:
        await app.register(agent_id)
        before = int(time.time())
        response = await app.start_session(agent_id, metadata={"language": "en", "department": "sales"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"room_name", "livekit_url", "participant_token"}
    assert body["livekit_url"] == settings.livekit_url
    match = re.fullmatch(rf"JDOE1-{agent_id}-(\d+)-([0-9a-f]{{32}})", body["room_name"])
    assert match is not None
    assert before <= int(match.group(1)) <= before + 2

    claims = verify(body["participant_token"])
    assert claims.identity == "jane.doe@example.com"
    assert claims.name == "Jane Doe"
    assert claims.video is not None
    assert claims.video.room_join is True
    assert claims.video.room == body["room_name"]
    assert (claims.video.can_publish, claims.video.can_subscribe, claims.video.can_publish_data) == (
        True,
        True,
        True,
    )
    assert not claims.video.agent
    config = claims.room_config
    assert config is not None
    assert config.max_participants == 2
    assert config.departure_timeout == 30
    assert config.sync_streams is True
    assert len(config.agents) == 1
    assert config.agents[0].agent_name == agent_id
    assert json.loads(config.agents[0].metadata) == {
        "language": "en",
        "department": "sales",
        "participant_name": "Jane Doe",
        "participant_identity": "jane.doe@example.com",
        "participant_cwid": "JDOE1",
    }
    assert authorizer.calls == [(agent_id, CLIENT_ID)]


async def test_callers_cannot_override_the_participant_identity_fields_in_metadata(
    settings: Settings,
) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(
            agent_id, metadata={"participant_identity": "ceo@example.com", "participant_cwid": "CEO"}
        )
    config = verify(response.json()["participant_token"]).room_config
    assert config is not None
    metadata = json.loads(config.agents[0].metadata)
    assert metadata["participant_identity"] == "jane.doe@example.com"
    assert metadata["participant_cwid"] == "JDOE1"


async def test_without_a_profile_the_user_id_is_the_cwid_and_the_email_the_identity(
    settings: Settings,
) -> None:
    agent_id = new_agent_id()
    headers = gateway_headers(user_id="u123", email="someone@example.com")
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, headers=headers)
    assert response.json()["room_name"].startswith(f"u123-{agent_id}-")
    claims = verify(response.json()["participant_token"])
    assert claims.identity == "someone@example.com"
    assert claims.name == "someone@example.com"


async def test_a_base64_encoded_profile_header_is_understood(settings: Settings) -> None:
    import base64

    agent_id = new_agent_id()
    profile = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "cwid": "ALOVE"}
    headers = gateway_headers(email=None)
    headers["x-user-profile"] = base64.b64encode(json.dumps(profile).encode()).decode()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, headers=headers)
    assert response.json()["room_name"].startswith(f"ALOVE-{agent_id}-")
    claims = verify(response.json()["participant_token"])
    assert (claims.identity, claims.name) == ("ada@example.com", "Ada Lovelace")


async def test_a_cwid_with_unsafe_characters_is_made_safe_in_the_room_name(settings: Settings) -> None:
    agent_id = new_agent_id()
    headers = client_headers(profile={"cwid": "a/b c"})
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, headers=headers)
    assert response.json()["room_name"].startswith(f"a_b_c-{agent_id}-")


async def test_an_agent_that_never_registered_is_404(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.start_session(new_agent_id())
    assert response.status_code == 404
    assert response.json()["error"] == "agent_not_registered"
    assert response.json()["field"] == "agent_entra_app_id"


async def test_an_agent_registered_through_another_replica_is_found_in_the_database(
    settings: Settings,
) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as replica_a:
        await replica_a.register(agent_id, enforce=False)
    async with running_app(settings) as replica_b:
        response = await replica_b.start_session(agent_id)
    assert response.status_code == 200


async def test_a_client_that_is_not_pre_authorized_is_403(settings: Settings) -> None:
    agent_id = new_agent_id()
    authorizer = StaticAuthorizer()
    async with running_app(settings, authorizer=authorizer) as app:
        await app.register(agent_id)
        response = await app.start_session(agent_id)
    assert response.status_code == 403
    assert response.json()["error"] == "client_not_authorized"
    assert CLIENT_ID in response.json()["detail"]
    assert authorizer.calls == [(agent_id, CLIENT_ID)]


async def test_an_agent_that_does_not_enforce_authz_skips_the_check(settings: Settings) -> None:
    agent_id = new_agent_id()
    authorizer = StaticAuthorizer()
    async with running_app(settings, authorizer=authorizer) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, headers=client_headers(client_id=None))
    assert response.status_code == 200
    assert authorizer.calls == []


async def test_missing_client_id_for_an_enforcing_agent_is_400_naming_the_header(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id)
        response = await app.start_session(agent_id, headers=client_headers(client_id=None))
    assert response.status_code == 400
    assert response.json()["field"] == "client-id"


async def test_graph_unavailable_is_503_and_never_a_silent_allow(settings: Settings) -> None:
    agent_id = new_agent_id()
    authorizer = StaticAuthorizer(error=GraphUnavailableError("HTTP 500"))
    async with running_app(settings, authorizer=authorizer) as app:
        await app.register(agent_id)
        response = await app.start_session(agent_id)
    assert response.status_code == 503
    assert response.json()["error"] == "graph_unavailable"


async def test_a_caller_without_cwid_or_user_id_is_400(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, headers=gateway_headers(user_id=None))
    assert response.status_code == 400
    assert response.json()["field"] == "user-id"


async def test_a_profile_header_that_is_not_json_is_400_naming_it(settings: Settings) -> None:
    agent_id = new_agent_id()
    headers = gateway_headers()
    headers["user-profile"] = "{{{"
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, headers=headers)
    assert response.status_code == 400
    assert response.json()["field"] == "user-profile"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({}, "agent_entra_app_id", "required"),
        ({"agent_entra_app_id": "not-a-guid"}, "agent_entra_app_id", "GUID"),
        ({"agent_entra_app_id": 42}, "agent_entra_app_id", "string"),
        ({"agent_entra_app_id": "@agent", "metadata": []}, "metadata", "object"),
        (
            {"agent_entra_app_id": "@agent", "metadata": {f"k{i}": i for i in range(51)}},
            "metadata",
            "51 keys",
        ),
        ({"agent_entra_app_id": "@agent", "metadata": {"blob": "x" * 10_300}}, "metadata", "bytes"),
        ([1, 2], "body", "object"),
    ],
)
async def test_session_start_rejects_bad_input_naming_the_field(
    settings: Settings, body: Any, field: str, says: str
) -> None:
    agent_id = new_agent_id()
    if isinstance(body, dict) and body.get("agent_entra_app_id") == "@agent":
        body["agent_entra_app_id"] = agent_id
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.client.post("/api/session/start", json=body, headers=client_headers())
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert says in response.json()["detail"]


async def test_metadata_at_the_limits_is_accepted(settings: Settings) -> None:
    agent_id = new_agent_id()
    metadata = {f"k{i:02d}": "v" * 190 for i in range(50)}
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) <= 10 * 1024
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id, metadata=metadata)
    assert response.status_code == 200


async def test_an_empty_body_is_400(settings: Settings) -> None:
    async with running_app(settings) as app:
        response = await app.client.post("/api/session/start", headers=client_headers())
    assert response.status_code == 400
    assert response.json()["field"] == "body"


async def test_session_start_records_the_requested_session(settings: Settings) -> None:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        room = (await app.start_session(agent_id)).json()["room_name"]
        await app.services.audit.flush()
    rows = await fetch_rows(settings.database_url, "SELECT * FROM sessions WHERE room_name = :r", r=room)
    assert len(rows) == 1
    assert rows[0]["status"] == "requested"
    assert rows[0]["agent_entra_app_id"] == agent_id
    assert rows[0]["client_id"] == CLIENT_ID
    assert rows[0]["participant_identity"] == "jane.doe@example.com"
    assert rows[0]["participant_cwid"] == "JDOE1"


async def test_a_nul_in_the_callers_profile_costs_only_its_own_record_never_the_queue(
    settings: Settings,
) -> None:
    # PostgreSQL text cannot hold NUL; SQLAlchemy raises that as a plain DBAPIError, not a DataError. The
    # writer must still see a refused record (set aside, counted), not a failure to retry forever.
    agent_id = new_agent_id()
    odd = client_headers(email=None, profile={"email": "nul\x00@example.com", "cwid": "NUL1"})
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        refused = (await app.start_session(agent_id, headers=odd)).json()["room_name"]
        kept = (await app.start_session(agent_id)).json()["room_name"]
        await asyncio.wait_for(app.services.audit.flush(), 20)
        dropped = app.services.audit.dropped
    rows = await fetch_rows(settings.database_url, "SELECT room_name FROM sessions")
    assert [r["room_name"] for r in rows] == [kept]
    assert refused != kept
    assert dropped == 1


async def test_a_newer_registration_in_the_database_wins_over_a_stale_local_one(settings: Settings) -> None:
    agent_id = new_agent_id()
    short_ttl = settings.model_copy(update={"registry_cache_ttl": 0})
    async with running_app(short_ttl) as app:
        await app.register(agent_id, enforce=False)
        await app.services.audit.flush()
        # Another replica re-registered the agent with enforcement on, later than this process did.
        engine = create_async_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE agents SET enforce_client_authz = true, last_registered_at = :t"
                    " WHERE entra_app_id = :a"
                ),
                {"t": dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5), "a": agent_id},
            )
        await engine.dispose()
        response = await app.start_session(agent_id)
    assert response.status_code == 403
