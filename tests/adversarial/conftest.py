"""Fixtures for the adversarial suite: the platform service's own (a migrated PostgreSQL database, settings
with ``LKPS_SPEEDUPS`` on and off, the stand-ins), loaded from tests/service so both suites build the app the
same way."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SERVICE_TESTS = Path(__file__).parents[1] / "service"
sys.path.insert(0, str(_SERVICE_TESTS))  # service_helpers

from service_helpers import migrated_database  # noqa: E402
from support.postgres import PostgresCluster  # noqa: E402

_spec = importlib.util.spec_from_file_location("service_fixtures", _SERVICE_TESTS / "conftest.py")
assert _spec is not None
assert _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

db_url = _fixtures.db_url
entra_settings = _fixtures.entra_settings
graph_calls = _fixtures.graph_calls
livekit_standin_options = _fixtures.livekit_standin_options
parties = _fixtures.parties
settings = _fixtures.settings
speedups = _fixtures.speedups


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresCluster) -> str:
    """This suite's own database (the service suite's ``pg_url`` makes ``lkps_service`` in one cluster)."""
    return migrated_database(postgres, "lkps_adversarial")
