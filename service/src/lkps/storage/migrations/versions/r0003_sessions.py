"""One name per concept: the session lifecycle table ``agent_jobs`` becomes ``sessions``.

Rows, columns and types are kept; the indexes and the primary key constraint follow the table's new name.
PostgreSQL renames them in place; SQLite cannot rename an index or a constraint, so the table is rebuilt.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = {"agent_entra_app_id": "ix_{table}_agent_entra_app_id", "status": "ix_{table}_status"}


def _rename(old: str, new: str) -> None:
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        for pattern in _INDEXED.values():
            op.execute(f"ALTER INDEX {pattern.format(table=old)} RENAME TO {pattern.format(table=new)}")
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")
        return
    with op.batch_alter_table(new, recreate="always") as batch:
        batch.drop_constraint(f"pk_{old}", type_="primary")
        batch.create_primary_key(f"pk_{new}", ["room_name"])
        for column, pattern in _INDEXED.items():
            batch.drop_index(pattern.format(table=old))
            batch.create_index(pattern.format(table=new), [column])


def upgrade() -> None:
    _rename("agent_jobs", "sessions")


def downgrade() -> None:
    _rename("sessions", "agent_jobs")
