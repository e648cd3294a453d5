"""In-process seams for the SDK unit tests: a virtual clock and a static Entra credential."""

from __future__ import annotations

import base64
import json
from typing import Any

from azure.core.credentials import AccessToken

from livekit_platform_sdk.retry import Timing


class VirtualTime:
    """A wall clock that only moves when the code under test sleeps; every sleep is recorded."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def timing(self) -> Timing:
        return Timing(clock=self.clock, sleep=self.sleep, rng=lambda: 0.5)


def fake_jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


class StaticCredential:
    """An azure-identity-shaped async credential that hands out one token (the ``credential=`` seam)."""

    def __init__(self, app_id: str = "11111111-2222-3333-4444-555555555555") -> None:
        self.token = fake_jwt({"azp": app_id})
        self.calls = 0
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, 1_900_000_000)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> StaticCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
