"""Tokens carry exactly the claims livekit-api's own ``AccessToken`` would produce: the plain minter's
(livekit-api's claim set, signed at the service's clock) and speedup ``tokens``' (prepared claims, signed
directly)."""

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

from lkps.domain.tokens import RoomConfig, TokenMinter
from lkps.speedups.tokens import PreparedTokenMinter, base64url

KEY, SECRET = "APIminter", "minter-secret-" + "m" * 40
MINTERS = pytest.mark.parametrize("minter", [TokenMinter, PreparedTokenMinter])


def decoded(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, SECRET, algorithms=["HS256"], issuer=KEY))


def without_times(claims: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in claims.items() if k not in {"nbf", "exp"}}


@MINTERS
def test_agent_token_matches_livekit_apis_claims(minter: type[TokenMinter]) -> None:
    now = int(time.time())
    ours = minter(KEY, SECRET).agent_token(identity="agent-x-1", name="x", now=now, ttl=600)
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


@MINTERS
def test_participant_token_matches_livekit_apis_claims_including_room_config(
    minter: type[TokenMinter],
) -> None:
    now = int(time.time())
    metadata = json.dumps({"participant_cwid": "X"})
    ours = minter(KEY, SECRET).participant_token(
        identity="jane@example.com",
        name="Jane",
        room="r1",
        room_config=RoomConfig(agent_name="agent-app", agent_metadata=metadata),
        metadata=json.dumps({"k": "v"}, separators=(",", ":")),
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


@MINTERS
def test_a_token_signed_with_another_secret_does_not_verify(minter: type[TokenMinter]) -> None:
    token = minter(KEY, "other-secret-" + "o" * 40).agent_token(
        identity="a", name="a", now=int(time.time()), ttl=60
    )
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(KEY, SECRET).verify(token)


def test_base64url_segments_are_pyjwts_for_every_length_and_byte() -> None:
    samples = [os.urandom(n) for n in range(70)] + [bytes(range(256)), b"\xfb\xff\xfe" * 7]
    for data in samples:
        assert base64url(data) == jwt.utils.base64url_encode(data), data


@pytest.mark.parametrize("name", ["Jane", ""])
def test_both_minters_sign_the_same_claims_at_the_time_they_are_given(name: str) -> None:
    now = 1_800_000_000  # not the wall clock: the audit row states the token's nbf and exp
    config = RoomConfig(agent_name="agent-app", agent_metadata='{"a":1}', max_participants=3)
    tokens = [
        minter(KEY, SECRET).participant_token(
            identity="i", name=name, room="r", room_config=config, now=now, ttl=60
        )
        for minter in (TokenMinter, PreparedTokenMinter)
    ]
    plain, prepared = (
        jwt.decode(t, SECRET, algorithms=["HS256"], options={"verify_nbf": False, "verify_exp": False})
        for t in tokens
    )
    assert plain == prepared
    assert (plain["nbf"], plain["exp"]) == (now, now + 60)
