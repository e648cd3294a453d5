"""The platform stand-in's register answer, as an agent's real HTTP client meets it."""

from __future__ import annotations

import uuid

import httpx
from livekit import api

from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.platform import PlatformStandIn
from livekit_platform_testing.tenant import Tenant


async def test_register_answers_the_canonical_agent_name_of_the_callers_identity(
    platform_standin: PlatformStandIn, livekit_standin: LiveKitStandIn, tenant: Tenant
) -> None:
    app_id = str(uuid.uuid4()).upper()
    agent = tenant.add_agent("capital agent", app_id=app_id)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{platform_standin.url}/api/agent/register", json={}, headers=await tenant.bearer(agent)
        )

    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["agent_name"] == app_id.lower()
    assert set(grant) == {"livekit_token", "livekit_url", "expires_in", "agent_name"}
    claims = api.TokenVerifier(livekit_standin.api_key, livekit_standin.api_secret).verify(
        grant["livekit_token"]
    )
    assert claims.identity == f"agent-{app_id}"
    assert platform_standin.registered_app_ids == [app_id]


def test_a_session_dispatches_an_app_id_by_its_canonical_name(
    platform_standin: PlatformStandIn, livekit_standin: LiveKitStandIn
) -> None:
    app_id = str(uuid.uuid4())
    token = platform_standin.session_token(room="r1", agent_name=app_id.upper())
    claims = api.TokenVerifier(livekit_standin.api_key, livekit_standin.api_secret).verify(token)

    assert claims.room_config is not None
    assert [agent.agent_name for agent in claims.room_config.agents] == [app_id]
    plain = platform_standin.session_token(room="r2", agent_name="plain-agent")
    assert (
        api.TokenVerifier(livekit_standin.api_key, livekit_standin.api_secret)
        .verify(plain)
        .room_config.agents[0]
        .agent_name
        == "plain-agent"
    )
