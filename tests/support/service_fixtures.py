"""The platform service's fixtures, shared by the suites that build the app (tests/service and
tests/adversarial): a migrated PostgreSQL database, settings with ``LKPS_SPEEDUPS`` on and off, and the
stand-ins of the livekit-platform-testing plugin configured for the service. A suite's conftest imports the
ones it uses."""

from __future__ import annotations

from typing import Any

import pytest

from livekit_platform_testing.livekit import LiveKitStandIn
from livekit_platform_testing.tenant import Tenant
from lkps.settings import Settings
from lkps.speedups import spelled
from tests.support.postgres import PostgresCluster
from tests.support.service import API_KEY, API_SECRET, Parties, emptied, migrated_database, service_env


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresCluster) -> str:
    """A database migrated to head once per session (tests start from empty tables via ``db_url``)."""
    return migrated_database(postgres, "lkps_service")


@pytest.fixture
async def db_url(pg_url: str) -> str:
    return await emptied(pg_url)


@pytest.fixture(scope="session")
def livekit_standin_options() -> dict[str, Any]:
    """The LiveKit stand-in gets the service's key pair; its ``GET /`` is what the health check probes."""
    return {"api_key": API_KEY, "api_secret": API_SECRET}


@pytest.fixture(params=["on", "off"], ids=["speedups-on", "speedups-off"])
def speedups(request: pytest.FixtureRequest) -> str:
    """``LKPS_SPEEDUPS``: every test through the app runs with every speedup on, and on the plain path."""
    return str(request.param)


@pytest.fixture
def settings(livekit_standin: LiveKitStandIn, db_url: str, speedups: str) -> Settings:
    return Settings.from_env(service_env(livekit_standin.ws_url, db_url, LKPS_SPEEDUPS=speedups))


@pytest.fixture(scope="module")
def parties(tenant: Tenant) -> Parties:
    """An agent, a client pre-authorized for it and a stranger, in the plugin's ``tenant``."""
    agent = tenant.add_agent("agent")
    client = tenant.add_client("client", authorized_for=[agent])
    stranger = tenant.add_client("unauthorized client")
    return Parties(agent, client, stranger)


@pytest.fixture
def entra_settings(tenant: Tenant, settings: Settings) -> Settings:
    env = service_env(
        settings.livekit_url,
        settings.database_url,
        LKPS_IDENTITY_MODE="entra",
        LKPS_SPEEDUPS=spelled(settings.speedups),
        **tenant.service_env(),
    )
    return Settings.from_env(env)


@pytest.fixture
def graph_calls(tenant: Tenant) -> None:
    tenant.entra.clear_records()
