"""Participant tokens are short-lived: a token a client never used (or used for a session that has ended, or
for an agent since revoked) can recreate the room and dispatch the agent again only until it expires. Five
minutes by default, at most 15 (LiveKit refreshes a connected participant's token itself)."""

from __future__ import annotations

import jwt
import pytest
from livekit import api

from lkps.envsettings import SettingsError
from lkps.settings import Settings
from tests.support.service import API_KEY, API_SECRET, new_agent_id, running_app, service_env


async def lifetime(settings: Settings) -> int:
    agent_id = new_agent_id()
    async with running_app(settings) as app:
        await app.register(agent_id, enforce=False)
        response = await app.start_session(agent_id)
    assert response.status_code == 200, response.text
    token = response.json()["participant_token"]
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
    assert claims.room_config is not None  # the grant that recreates the room and dispatches the agent
    raw = jwt.decode(token, options={"verify_signature": False})
    return int(raw["exp"]) - int(raw["nbf"])


async def test_a_participant_token_lives_five_minutes_by_default(settings: Settings) -> None:
    assert await lifetime(settings) == 300


async def test_a_configured_lifetime_is_honoured_up_to_the_cap(settings: Settings) -> None:
    assert await lifetime(settings.model_copy(update={"participant_token_ttl": 900})) == 900


@pytest.mark.parametrize("ttl", ["901", "3600", "86400"])
def test_a_lifetime_past_fifteen_minutes_is_refused_naming_the_variable(ttl: str) -> None:
    env = service_env("wss://lk.example.com", "sqlite:///x.db", LKPS_PARTICIPANT_TOKEN_TTL=ttl)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert "LKPS_PARTICIPANT_TOKEN_TTL" in str(refused.value)
