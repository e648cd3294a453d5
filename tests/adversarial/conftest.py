"""Fixtures for the adversarial suite: the platform service's own (a migrated PostgreSQL database, settings
with ``LKPS_SPEEDUPS`` on and off, the stand-ins), so both suites build the app the same way; and the
environment of a gateway-mode service with its shared secret (``env``, ``gateway_settings``)."""

from __future__ import annotations

import pytest

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.settings import Settings
from tests.support.edge import GATEWAY_SECRET
from tests.support.postgres import PostgresCluster
from tests.support.service import migrated_database, service_env
from tests.support.service_fixtures import (  # noqa: F401 (fixtures: pytest finds them by name)
    db_url,
    entra_settings,
    graph_calls,
    livekit_standin_options,
    parties,
    settings,
    speedups,
)


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresCluster) -> str:
    """This suite's own database: each conftest's session fixtures are separate, and tests/service migrates
    ``lkps_service``."""
    return migrated_database(postgres, "lkps_adversarial")


@pytest.fixture
def env(livekit_standin: LiveKitStandIn, db_url: str, speedups: str) -> dict[str, str]:  # noqa: F811
    """The environment of a gateway-mode service with its shared secret (tests add limits to it)."""
    return service_env(
        livekit_standin.ws_url, db_url, LKPS_SPEEDUPS=speedups, LKPS_GATEWAY_SHARED_SECRET=GATEWAY_SECRET
    )


@pytest.fixture
def gateway_settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)
