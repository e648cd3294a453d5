"""``LKPS_SPEEDUPS``: one switch for every speedup (``on``, ``off``, or the names to turn on), each name
choosing exactly its own piece of the app, and a bad value named with the fix."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route

from livekit_platform_testing.livekit import LiveKitStandIn
from lkps.api.agents import AgentRegistration
from lkps.app import Services, create_app, server, server_config, setup_logging
from lkps.settings import Settings, SettingsError
from lkps.speedups import SPEEDUPS, parse, spelled
from lkps.speedups.bulk import BulkWrites
from lkps.speedups.caches import CachedGatewayIdentity, FastIds
from lkps.speedups.hot_routes import HotRoutes
from lkps.speedups.http_protocol import CorkedHttpToolsProtocol
from lkps.speedups.logs import BatchingStreamHandler
from lkps.speedups.responses import ApiResponse
from lkps.speedups.tokens import PreparedTokenMinter
from lkps.speedups.webhooks import FastWebhookVerifier
from tests.support.service import service_env


def settings_with(livekit: LiveKitStandIn, database_url: str, speedups: str | None) -> Settings:
    extra = {} if speedups is None else {"LKPS_SPEEDUPS": speedups}
    return Settings.from_env(service_env(livekit.ws_url, database_url, **extra))


@pytest.fixture
def restored_process() -> Iterator[None]:
    """Logging and the collector as they were: setup_logging and server() change the whole process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    details = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level
        logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = details
        gc.unfreeze()


def running_fast(settings: Settings) -> dict[str, bool]:
    """For each speedup name, whether the process built from ``settings`` runs its piece."""
    app = create_app(settings)
    services: Services = app.state.services
    register = next(r for r in app.routes if isinstance(r, Route) and r.path == "/api/agent/register")
    agents = register.endpoint.__self__  # type: ignore[attr-defined]
    assert isinstance(agents, AgentRegistration)
    setup_logging(settings)
    gc.unfreeze()
    server(settings, "127.0.0.1", 0)
    return {
        "http": issubclass(
            server_config(app, "127.0.0.1", 0, settings.speedups).http, CorkedHttpToolsProtocol
        ),
        "routes": HotRoutes in [m.cls for m in app.user_middleware],
        "json": agents.json is ApiResponse,
        "tokens": isinstance(agents.minter, PreparedTokenMinter),
        "webhooks": isinstance(services.webhook_verifier, FastWebhookVerifier),
        "bulk": isinstance(services.writes, BulkWrites),
        "caches": isinstance(agents.ids, FastIds) and isinstance(services.identity, CachedGatewayIdentity),
        "logs": isinstance(logging.getLogger().handlers[0], BatchingStreamHandler),
        "gc": gc.get_freeze_count() > 0,
    }


@pytest.mark.usefixtures("restored_process")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, set(SPEEDUPS)),  # the default
        ("on", set(SPEEDUPS)),
        ("off", set()),
        ("OFF", set()),
        *[(name, {name}) for name in SPEEDUPS],
        *[(spelled(set(SPEEDUPS) - {name}), set(SPEEDUPS) - {name}) for name in SPEEDUPS],
        ("http, routes ,json", {"http", "routes", "json"}),
    ],
)
def test_each_speedup_name_turns_on_its_piece_and_no_other(
    livekit_standin: LiveKitStandIn, pg_url: str, value: str | None, expected: set[str]
) -> None:
    settings = settings_with(livekit_standin, pg_url, value)
    assert settings.speedups == expected
    assert running_fast(settings) == {name: name in expected for name in SPEEDUPS}


def test_bulk_statements_are_postgresql_only(livekit_standin: LiveKitStandIn, tmp_path: Path) -> None:
    settings = settings_with(livekit_standin, f"sqlite:///{tmp_path}/lkps.db", "on")
    services: Services = create_app(settings).state.services
    assert not isinstance(services.writes, BulkWrites)  # SQLite keeps SQLAlchemy's statements


def test_an_unknown_name_is_refused_naming_the_variable_and_every_known_name(
    livekit_standin: LiveKitStandIn,
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_with(livekit_standin, "sqlite:///unused.db", "http,turbo,Fast")
    (problem,) = raised.value.problems
    assert problem.startswith("LKPS_SPEEDUPS='http,turbo,Fast' names unknown speedups (fast, turbo)")
    assert all(name in problem for name in SPEEDUPS)


@pytest.mark.parametrize(
    "value", ["on", "off", "http", "routes,bulk,gc", spelled(set(SPEEDUPS) - {"tokens"})]
)
def test_spelled_names_read_back_as_the_same_speedups(value: str) -> None:
    names, unknown = parse(value)
    assert unknown == []
    assert parse(spelled(names)) == (names, [])
