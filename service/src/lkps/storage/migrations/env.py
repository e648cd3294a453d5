"""Alembic environment: runs revisions over the service's async engine (PostgreSQL or SQLite)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

from alembic import context
from sqlalchemy.engine import Connection

from lkps.settings import DEFAULT_DATABASE_URL, normalize_database_url
from lkps.storage.engine import create_engine
from lkps.storage.schema import metadata

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    # The alembic CLI (service/alembic.ini) has no settings object: fall back to the service's variable.
    return normalize_database_url(str(url or os.environ.get("LKPS_DATABASE_URL") or DEFAULT_DATABASE_URL))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    before = set(threading.enumerate())
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()
        await _settle_sqlite_threads(set(threading.enumerate()) - before)


async def _settle_sqlite_threads(started: set[threading.Thread], timeout: float = 2.0) -> None:
    """aiosqlite stops a worker thread (after a failed connect too) with a call back into this loop; wait for
    the ones this run started while the loop still runs, or such a thread meets a closed loop and prints a
    traceback under the operator's one-line error."""
    for thread in started:
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, timeout)


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async())
    else:
        # Called synchronously from inside an event loop (e.g. a test): use a private loop in a thread.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _run_async()).result()
