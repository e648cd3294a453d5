"""Fixtures for the adversarial suite: the platform service's own (a migrated PostgreSQL database, settings
with ``LKPS_SPEEDUPS`` on and off, the stand-ins), so both suites build the app the same way."""

from __future__ import annotations

import pytest

from tests.support.postgres import PostgresCluster
from tests.support.service import migrated_database
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
