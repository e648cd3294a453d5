"""The Alembic upgrade ``lkps migrate`` runs: the revisions in ``migrations/`` ship inside the package."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config


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
