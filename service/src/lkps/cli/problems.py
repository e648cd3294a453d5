"""Start-up failures as an operator reads them: one or a few lines naming the variable, what is wrong with its
(redacted) value and the fix; never a traceback. ``lkps`` prints them and exits with status 2."""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..settings import redacted_database_url

EXIT_CONFIG = 2


class OperatorError(Exception):
    """A failure the operator fixes in the environment; ``str()`` is what to print."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps (``.orig``), and their causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [getattr(item, "orig", None), item.__cause__, item.__context__]


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else ""


def database_problem(exc: BaseException, database_url: str, *, doing: str) -> OperatorError:
    """What went wrong ``doing`` something with the database, for LKPS_DATABASE_URL's operator."""
    shown = redacted_database_url(database_url)
    where = f"LKPS_DATABASE_URL ({shown})"
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        return OperatorError(
            f"{where} is not a valid database URL: use postgresql://user:password@host:5432/db or"
            " sqlite:///path/to/file.db"
        )
    if url.get_backend_name() == "sqlite":
        return _sqlite_problem(exc, where, url.database or "", doing)
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    for item in _chain(exc):
        state = _sqlstate(item)
        if state == "28P01" or (state == "28000" and "password" in str(item).lower()):
            return OperatorError(
                f"{where}: PostgreSQL at {server} refused the password for user {url.username!r}: set the"
                " right password in LKPS_DATABASE_URL"
            )
        if state.startswith("28"):
            return OperatorError(
                f"{where}: PostgreSQL at {server} refused user {url.username!r} (it does not exist or may not"
                " connect to this database): fix the user in LKPS_DATABASE_URL or grant it access"
            )
        if state == "3D000":
            return OperatorError(
                f"{where}: database {url.database!r} does not exist on {server}: create it"
                f" (createdb {url.database}) or fix the name in LKPS_DATABASE_URL"
            )
        if state == "42501":
            return OperatorError(
                f"{where}: user {url.username!r} may not {doing} (insufficient privilege): grant it the"
                " rights on the database, or use its owner"
            )
        if isinstance(item, socket.gaierror):
            return OperatorError(
                f"{where}: host {url.host!r} does not resolve: fix the host name in LKPS_DATABASE_URL"
            )
        if isinstance(item, ConnectionRefusedError) or getattr(item, "errno", None) == errno.ECONNREFUSED:
            return OperatorError(
                f"{where}: nothing accepts connections at {server} (connection refused): start PostgreSQL,"
                " or fix the host and port in LKPS_DATABASE_URL"
            )
        if isinstance(item, TimeoutError):
            return OperatorError(
                f"{where}: PostgreSQL at {server} did not answer in time: check that it runs and that the"
                " network (a firewall or network policy) lets this host reach it"
            )
        if isinstance(item, OSError) and not isinstance(item, ConnectionError):
            return OperatorError(
                f"{where}: cannot reach PostgreSQL at {server} ({item.strerror or type(item).__name__}):"
                " check the host and port and the network between"
            )
    return _unknown(exc, where, doing)


def _sqlite_problem(exc: BaseException, where: str, path: str, doing: str) -> OperatorError:
    for item in _chain(exc):
        text = str(item).lower()
        if isinstance(item, sqlite3.OperationalError) and "unable to open" in text:
            return OperatorError(
                f"{where}: cannot open or create the SQLite file {path!r}: its folder must exist and be"
                " writable by this user; create the folder or point LKPS_DATABASE_URL elsewhere"
            )
        if isinstance(item, sqlite3.OperationalError) and "readonly" in text:
            return OperatorError(
                f"{where}: the SQLite file {path!r} is read-only for this user: make it (and its folder)"
                " writable or point LKPS_DATABASE_URL elsewhere"
            )
        if isinstance(item, sqlite3.DatabaseError) and "not a database" in text:
            return OperatorError(
                f"{where}: {path!r} is not a SQLite database: point LKPS_DATABASE_URL at the service's file"
            )
    return _unknown(exc, where, doing)


def _unknown(exc: BaseException, where: str, doing: str) -> OperatorError:
    # The exception's type only: a driver's message may quote the URL, password included.
    return OperatorError(f"{where}: could not {doing} ({type(exc).__name__}): check the database and the URL")
