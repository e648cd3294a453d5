"""The Alembic upgrade ``lkps migrate`` runs: the revisions in ``migrations/`` ship inside the package."""

from __future__ import annotations

import asyncio
import io

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(database_url: str) -> Config:
    """An Alembic config that needs no ini file."""
    config = Config()
    config.set_main_option("script_location", "lkps.storage:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (blocking; call from a thread when a loop is running)."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, revision)


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema back to ``revision`` (developers and tests; production migrates forward only)."""
    command.downgrade(alembic_config(database_url), revision)


def sql(database_url: str, start: str | None = None, end: str = "head") -> str:
    """The DDL ``upgrade`` would run, in the URL's dialect, without connecting (Alembic's offline mode):
    from ``start`` (default: an empty database) to ``end``, for review before ``lkps migrate``."""
    buffer = io.StringIO()
    config = alembic_config(database_url)
    config.output_buffer = buffer
    command.upgrade(config, f"{start}:{end}" if start else end, sql=True)
    return buffer.getvalue()


def head() -> str:
    """The revision this release's schema is at."""
    revision = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert revision is not None, "the migrations have one head"
    return revision


def is_behind(current: str | None) -> bool:
    """Whether a database at revision ``current`` (``None``: no schema) lacks revisions of this release; a
    revision this release does not know (a newer release's) is not behind."""
    if current is None:
        return True
    script = ScriptDirectory.from_config(alembic_config(""))
    known = {revision.revision for revision in script.walk_revisions()}
    return current in known and current != head()


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)
