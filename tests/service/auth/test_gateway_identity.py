"""Gateway mode's identity: the injected headers, and the profile header's fields when it is sent (the same
with speedup ``caches``, which keeps decoded profiles)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.datastructures import Headers

from lkps.auth.gateway import GatewayIdentity
from lkps.auth.identity import Identity
from lkps.settings import Settings
from lkps.speedups.caches import CachedGatewayIdentity
from tests.support.service import service_env

APP = "0f6a3c1e-7d7b-4a8e-9a59-1c2d3e4f5a6b"
USER = "7e1d2c3b-4a59-4867-9a8b-c7d6e5f4a3b2"


@pytest.fixture(params=[GatewayIdentity, CachedGatewayIdentity])
def gateway(request: pytest.FixtureRequest) -> GatewayIdentity:
    settings = Settings.from_env(service_env("ws://127.0.0.1:9", "sqlite+aiosqlite:///unused.db"))
    resolver: GatewayIdentity = request.param(settings)
    return resolver


async def resolve(gateway: GatewayIdentity, headers: dict[str, str]) -> Identity:
    identity = await gateway.resolve(Headers(headers=headers), "session")
    assert await gateway.resolve(Headers(headers=headers), "session") == identity  # asked again, same answer
    return identity


async def test_without_a_profile_only_the_headers_count(gateway: GatewayIdentity) -> None:
    identity = await resolve(gateway, {"client-id": APP, "user-id": USER, "x-user-email": "a@example.com"})
    assert identity == Identity(APP, USER, "a@example.com", None, None)


@pytest.mark.parametrize(
    ("profile", "display_name"),
    [
        ({"displayName": "Ada L.", "firstName": "Ada", "lastName": "Lovelace"}, "Ada L."),
        ({"firstName": "Ada", "lastName": "Lovelace"}, "Ada Lovelace"),
        ({"firstName": "Ada"}, "Ada"),
        ({"lastName": "Lovelace", "firstName": ""}, "Lovelace"),
        ({"displayName": "", "firstName": 7, "lastName": None}, None),
        ({"cwid": "ALOVE"}, None),
    ],
)
async def test_the_display_name_comes_from_the_profile(
    gateway: GatewayIdentity, profile: dict[str, Any], display_name: str | None
) -> None:
    identity = await resolve(gateway, {"client-id": APP, "user-profile": json.dumps(profile)})
    assert identity.display_name == display_name
    assert identity.cwid == profile.get("cwid")


async def test_the_email_header_wins_over_the_profiles_and_the_profile_fills_in_without_it(
    gateway: GatewayIdentity,
) -> None:
    profile = json.dumps({"email": "profile@example.com", "cwid": "C1"})
    with_header = await resolve(gateway, {"x-user-email": "header@example.com", "user-profile": profile})
    without = await resolve(gateway, {"x-user-profile": profile})
    assert (with_header.email, with_header.cwid) == ("header@example.com", "C1")
    assert (without.email, without.cwid, without.client_id) == ("profile@example.com", "C1", None)
