"""What ``lkps serve``/``dev`` check before they start, and the database steps of ``migrate``: each failure an
:class:`~.problems.OperatorError` (the variable, the problem, the fix), never a traceback from inside the
server."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..settings import DatabaseSettings, Settings
from ..storage import migrate
from ..storage.engine import create_engine, ping
from .problems import OperatorError, database_problem

_T = TypeVar("_T")
CONNECT_TIMEOUT = 10.0


def upgrade(settings: DatabaseSettings) -> None:
    """``lkps migrate``: the schema to head, failures as operator errors."""
    try:
        migrate.upgrade(settings.database_url)
    except Exception as exc:  # whatever the driver raises: classified, never shown as a traceback
        raise database_problem(exc, settings.database_url, doing="migrate the schema") from None


def sql(settings: DatabaseSettings, start: str | None) -> str:
    """``lkps migrate --sql``: the DDL, without connecting."""
    if settings.database_url.startswith("sqlite"):
        raise OperatorError(
            "LKPS_DATABASE_URL is a SQLite URL: --sql prints PostgreSQL's DDL only (SQLite migrations"
            " rebuild tables and need the file itself); set LKPS_DATABASE_URL to the postgresql:// URL to"
            " review (it is not connected to) or run lkps migrate"
        )
    try:
        return migrate.sql(settings.database_url, start)
    except Exception as exc:  # an unknown revision given to --from, mostly
        raise OperatorError(
            f"--from {start!r}: not a revision of this release's migrations ({exc})"
        ) from None


def check(settings: Settings, host: str, port: int) -> None:
    """Before ``serve``: the ports can be bound, the database answers and its schema is this release's."""
    _bindable(host, port, "--port", "the service's port")
    if settings.metrics_enabled and settings.metrics_port is not None:
        if settings.metrics_port == port:
            raise OperatorError(
                f"LKPS_METRICS_PORT={settings.metrics_port} is the service's port (--port): pick another"
                " port, or unset it to serve /metrics on the service's port"
            )
        _bindable(host, settings.metrics_port, f"LKPS_METRICS_PORT={settings.metrics_port}", "it")
    if settings.migrate_on_start:
        upgrade(settings)
    current = run_database(settings, _current, doing="connect")
    if migrate.is_behind(current):
        at = f"is at revision {current}" if current else "has no schema"
        raise OperatorError(
            f"LKPS_DATABASE_URL: the database {at}, this lkps needs revision {migrate.head()}: run lkps"
            " migrate first (or set LKPS_MIGRATE_ON_START=true)"
        )


async def _current(settings: DatabaseSettings) -> str | None:
    engine = create_engine(settings.database_url)
    try:
        await ping(engine)
        return await migrate.current(engine)
    finally:
        await engine.dispose()


def run_database(
    settings: DatabaseSettings, step: Callable[[DatabaseSettings], Awaitable[_T]], *, doing: str
) -> _T:
    """``step(settings)`` on a private event loop, database failures as operator errors."""

    async def bounded() -> _T:
        return await asyncio.wait_for(step(settings), CONNECT_TIMEOUT)

    try:
        return asyncio.run(bounded())
    except OperatorError:
        raise
    except asyncio.TimeoutError:
        raise database_problem(TimeoutError(), settings.database_url, doing=doing) from None
    except Exception as exc:  # whatever the driver raises: classified, never shown as a traceback
        raise database_problem(exc, settings.database_url, doing=doing) from None


def _bindable(host: str, port: int, name: str, what: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                problem = f"{what} is in use on {host}: stop what listens there or pick another port"
            elif exc.errno == errno.EACCES:
                problem = f"{what} needs privileges on {host} (ports below 1024): pick a port from 1024 up"
            else:
                problem = f"cannot bind {what} on {host} ({exc.strerror}): check --host and the port"
            raise OperatorError(f"{name}: {problem}") from None
