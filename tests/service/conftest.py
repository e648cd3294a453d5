"""Fixtures for the platform service: a migrated PostgreSQL database, settings, and the stand-ins of the
livekit-platform-testing plugin configured for the service (defined in tests/support/service_fixtures.py)."""

from __future__ import annotations

from tests.support.service_fixtures import (  # noqa: F401 (fixtures: pytest finds them by name)
    db_url,
    entra_settings,
    graph_calls,
    livekit_standin_options,
    parties,
    pg_url,
    settings,
    speedups,
)
