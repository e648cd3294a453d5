"""Fast-minted tokens carry exactly the claims livekit-api's own ``AccessToken`` would produce."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import jwt
import jwt.utils
import pytest
from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from lkps.tokens import RoomConfig, TokenMinter, base64url

KEY, SECRET = "APIminter", "minter-secret-" + "m" * 40


def decoded(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, SECRET, algorithms=["HS256"], issuer=KEY))


def without_times(claims: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in claims.items() if k not in {"nbf", "exp"}}


def test_agent_token_matches_livekit_apis_claims() -> None:
    now = int(time.time())
    ours = TokenMinter(KEY, SECRET).agent_token(identity="agent-x-1", name="x", now=now, ttl=600)
    theirs = (
        api.AccessToken(KEY, SECRET)
        .with_identity("agent-x-1")
        .with_name("x")
        .with_kind("agent")
        .with_grants(api.VideoGrants(agent=True))
        .with_ttl(dt.timedelta(seconds=600))
        .to_jwt()
    )
    assert without_times(decoded(ours)) == without_times(decoded(theirs))
    assert decoded(ours)["exp"] == now + 600
    assert decoded(ours)["nbf"] == now


def test_participant_token_matches_livekit_apis_claims_including_room_config() -> None:
    now = int(time.time())
    metadata = json.dumps({"participant_cwid": "X"})
    ours = TokenMinter(KEY, SECRET).participant_token(
        identity="jane@example.com",
        name="Jane",
        room="r1",
        room_config=RoomConfig(agent_name="agent-app", agent_metadata=metadata),
        metadata={"k": "v"},
        now=now,
        ttl=600,
    )
    theirs = (
        api.AccessToken(KEY, SECRET)
        .with_identity("jane@example.com")
        .with_name("Jane")
        .with_metadata(json.dumps({"k": "v"}, separators=(",", ":")))
        .with_grants(api.VideoGrants(room_join=True, room="r1"))
        .with_room_config(
            RoomConfiguration(
                max_participants=2,
                departure_timeout=30,
                sync_streams=True,
                agents=[RoomAgentDispatch(agent_name="agent-app", metadata=metadata)],
            )
        )
        .to_jwt()
    )
    assert without_times(decoded(ours)) == without_times(decoded(theirs))
    claims = api.TokenVerifier(KEY, SECRET).verify(ours)
    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == "agent-app"


def test_a_token_signed_with_another_secret_does_not_verify() -> None:
    token = TokenMinter(KEY, "other-secret-" + "o" * 40).agent_token(
        identity="a", name="a", now=int(time.time()), ttl=60
    )
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(KEY, SECRET).verify(token)


def test_base64url_segments_are_pyjwts_for_every_length_and_byte() -> None:
    samples = [os.urandom(n) for n in range(70)] + [bytes(range(256)), b"\xfb\xff\xfe" * 7]
    for data in samples:
        assert base64url(data) == jwt.utils.base64url_encode(data), data
