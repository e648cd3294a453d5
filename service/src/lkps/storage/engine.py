"""The async database engine (PostgreSQL through asyncpg, SQLite through aiosqlite), and its errors read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An engine whose connections fail fast while the database is down (the writers retry on their own)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **kwargs)
        # WAL lets the health check read while a batch writes; the busy timeout rides out short write locks.
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {"timeout": 5, "command_timeout": 30, "server_settings": {"application_name": "lkps"}}
    connect_args.update(kwargs.pop("connect_args", {}))
    return create_async_engine(
        url, pool_size=5, max_overflow=5, pool_pre_ping=True, connect_args=connect_args, **kwargs
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def rows_refused(exc: DBAPIError) -> bool:
    """Whether the database refused the rows themselves (SQLSTATE class 22, data exception, or 23, integrity
    constraint violation), so that writing the same rows again can never succeed, unlike after a lost
    connection. SQLAlchemy's asyncpg dialect raises most class-22 errors (a NUL in text, say) as a plain
    ``DBAPIError``, so the state decides, not only the exception's class."""
    state = getattr(exc.orig, "sqlstate", None) or ""
    return isinstance(exc, (DataError, IntegrityError)) or state[:2] in ("22", "23")


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
