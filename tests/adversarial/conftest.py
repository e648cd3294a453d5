"""Fixtures for the adversarial suite: the service in gateway mode with its shared secret, on a migrated
PostgreSQL database, each test with speedups on and on the plain path."""

from __future__ import annotations

from typing import Any

import pytest
from support.edge import API_KEY, API_SECRET, GATEWAY_SECRET, emptied, migrated_database
from support.postgres import PostgresCluster

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.settings import Settings


@pytest.fixture(scope="session")
def adversarial_pg_url(postgres: PostgresCluster) -> str:
    return migrated_database(postgres, "lkps_adversarial")


@pytest.fixture
async def adversarial_db_url(adversarial_pg_url: str) -> str:
    return await emptied(adversarial_pg_url)


@pytest.fixture(scope="session")
def livekit_standin_options() -> dict[str, Any]:
    return {"api_key": API_KEY, "api_secret": API_SECRET}


@pytest.fixture(params=["on", "off"], ids=["speedups-on", "speedups-off"])
def speedups(request: pytest.FixtureRequest) -> str:
    """``LKPS_SPEEDUPS``: every attack runs against the fast path and the plain one."""
    return str(request.param)


@pytest.fixture
def env(livekit_standin: LiveKitStandIn, adversarial_db_url: str, speedups: str) -> dict[str, str]:
    """The environment of a gateway-mode service with its shared secret (tests add limits to it)."""
    return {
        "LIVEKIT_URL": livekit_standin.ws_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "LKPS_DATABASE_URL": adversarial_db_url,
        "LKPS_IDENTITY_MODE": "gateway",
        "LKPS_GATEWAY_SHARED_SECRET": GATEWAY_SECRET,
        "LKPS_SPEEDUPS": speedups,
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)
