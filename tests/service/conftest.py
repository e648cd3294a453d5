"""Fixtures for the platform service: a migrated PostgreSQL database, a LiveKit stand-in, settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service_helpers import (
    API_KEY,
    API_SECRET,
    REGISTER,
    SESSION,
    Tenant,
    emptied,
    migrated_database,
    new_app,
    service_env,
)
from support.postgres import PostgresCluster

from livekit_platform_sdk.testing.entra import GRAPH_APP_ID, EntraStandIn
from livekit_platform_sdk.testing.livekit_server import LiveKitStandIn
from lkps.settings import Settings
from lkps.speedups import spelled


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresCluster) -> str:
    """A database migrated to head once per session (tests start from empty tables via ``db_url``)."""
    return migrated_database(postgres, "lkps_service")


@pytest.fixture
async def db_url(pg_url: str) -> str:
    return await emptied(pg_url)


@pytest.fixture(scope="session")
def livekit() -> Iterator[LiveKitStandIn]:
    """A LiveKit stand-in with the service's key pair; its ``GET /`` is what the health check probes."""
    with LiveKitStandIn(api_key=API_KEY, api_secret=API_SECRET) as server:
        yield server


@pytest.fixture(params=["on", "off"], ids=["speedups-on", "speedups-off"])
def speedups(request: pytest.FixtureRequest) -> str:
    """``LKPS_SPEEDUPS``: every test through the app runs with every speedup on, and on the plain path."""
    return str(request.param)


@pytest.fixture
def settings(livekit: LiveKitStandIn, db_url: str, speedups: str) -> Settings:
    return Settings.from_env(service_env(livekit.ws_url, db_url, LKPS_SPEEDUPS=speedups))


@pytest.fixture(scope="session")
def tenant() -> Iterator[Tenant]:
    """A tenant: the platform app (with Graph access), an agent, a pre-authorized client, a stranger."""
    with EntraStandIn() as entra:
        platform = new_app(entra, display_name="platform", app_roles=[REGISTER, SESSION])
        entra.assign_role(platform.app_id, GRAPH_APP_ID, "Application.Read.All")
        agent = new_app(entra, display_name="agent", exposed_scopes=["access_as_client"])
        entra.assign_role(agent.app_id, platform.app_id, REGISTER)
        client = new_app(entra, display_name="client")
        entra.assign_role(client.app_id, platform.app_id, SESSION)
        entra.pre_authorize(agent.app_id, client.app_id)
        stranger = new_app(entra, display_name="unauthorized client")
        entra.assign_role(stranger.app_id, platform.app_id, SESSION)
        yield Tenant(entra, platform, agent, client, stranger)


@pytest.fixture
def entra_settings(tenant: Tenant, settings: Settings) -> Settings:
    env = service_env(
        settings.livekit_url,
        settings.database_url,
        LKPS_IDENTITY_MODE="entra",
        LKPS_SPEEDUPS=spelled(settings.speedups),
        LKPS_ENTRA_TENANT_ID=tenant.entra.tenant_id,
        LKPS_ENTRA_AUDIENCE=f"{tenant.platform.app_id},api://{tenant.platform.app_id}",
        LKPS_ENTRA_AUTHORITY=tenant.entra.authority_host,
        LKPS_GRAPH_URL=tenant.entra.graph_url,
        LKPS_GRAPH_CLIENT_ID=tenant.platform.app_id,
        LKPS_GRAPH_CLIENT_SECRET=tenant.platform.secret,
        # The service's HTTP clients and azure-identity's aio transport trust the stand-in's CA through it.
        SSL_CERT_FILE=str(tenant.entra.ca_file),
    )
    return Settings.from_env(env)


@pytest.fixture
def graph_calls(tenant: Tenant) -> None:
    tenant.entra.clear_records()
