"""Speedup ``caches``: gateway identities kept by the raw values of the identity headers give the plain
resolver's answer for every caller (and every refusal), a caller's identity is never another's, and the
cache stays bounded."""

from __future__ import annotations

import json

import pytest
from starlette.datastructures import Headers

from lkps.auth.gateway import GatewayIdentity
from lkps.auth.identity import Identity
from lkps.errors import ApiError
from lkps.settings import Settings
from lkps.speedups import caches
from lkps.speedups.caches import CachedGatewayIdentity
from tests.support.service import service_env

SECRET = "gateway-secret-" + "g" * 40
APP = "0f6a3c1e-7d7b-4a8e-9a59-1c2d3e4f5a6b"


def settings(**extra: str) -> Settings:
    env = service_env("ws://127.0.0.1:9", "sqlite+aiosqlite:///unused.db")
    return Settings.from_env(
        {**env, "LKPS_IDENTITY_MODE": "gateway", "LKPS_GATEWAY_SHARED_SECRET": SECRET, **extra}
    )


def raw(headers: list[tuple[str, str]]) -> Headers:
    return Headers(raw=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers])


async def answer(resolver: GatewayIdentity, headers: list[tuple[str, str]]) -> Identity | tuple[int, str]:
    try:
        return await resolver.resolve(raw(headers), "session")
    except ApiError as exc:
        return exc.status, exc.detail


def callers() -> list[list[tuple[str, str]]]:
    base = [("host", "lkps"), ("client-id", APP), ("x-gateway-secret", SECRET)]
    profile = json.dumps({"cwid": "ALOVE", "email": "ada@example.com", "displayName": "Ada"})
    return [
        base,
        [*base, ("user-id", "u1")],
        [*base, ("user-id", "u2")],  # another caller: another identity
        [*base, ("user-id", "u1"), ("user-profile", profile)],
        [*base, ("user-id", "u1"), ("x-user-email", "h@example.com"), ("user-profile", profile)],
        [*base, ("user-id", "u1"), ("user-profile", "not json")],  # 400
        [*base, ("user-id", "u1"), ("user-id", "u1")],  # repeated: 400
        [*base, ("accept", "a"), ("accept", "b")],  # a repeated header nobody reads
        [("host", "lkps"), ("client-id", APP)],  # no secret: 401
        [("host", "lkps"), ("client-id", APP), ("x-gateway-secret", SECRET[:-1] + "x")],  # wrong: 401
        [("host", "lkps"), ("client-id", APP), ("x-gateway-secret", "é" + SECRET[1:])],  # not ASCII: 401
        [*base, ("user-id", "ü")],  # latin-1 bytes, decoded as the plain resolver decodes them
    ]


@pytest.mark.parametrize("extra", [{}, {"LKPS_GATEWAY_EMAIL_HEADER": "", "LKPS_GATEWAY_PROFILE_HEADERS": ""}])
async def test_the_cache_answers_as_the_plain_resolver(extra: dict[str, str]) -> None:
    plain, cached = GatewayIdentity(settings(**extra)), CachedGatewayIdentity(settings(**extra))
    for _ in range(2):  # computed, then from the cache
        for headers in callers():
            assert await answer(cached, headers) == await answer(plain, headers), headers


async def test_values_too_long_are_not_kept_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caches, "MAX_IDENTITIES", 4)
    cached = CachedGatewayIdentity(settings())
    base = [("client-id", APP), ("x-gateway-secret", SECRET)]
    long_id = "u" * (caches.MAX_CACHED_KEY + 1)
    identity = await cached.resolve(raw([*base, ("user-id", long_id)]), "session")
    assert identity.user_id == long_id
    assert not cached._identities
    for i in range(10):
        identity = await cached.resolve(raw([*base, ("user-id", f"u{i}")]), "session")
        assert identity.user_id == f"u{i}"
    assert [key[1] for key in cached._identities] == [b"u6", b"u7", b"u8", b"u9"]  # the newest four
