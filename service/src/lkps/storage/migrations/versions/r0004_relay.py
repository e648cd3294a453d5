"""What the agent relay saw: ``worker_connections`` (each worker connection, registered with LiveKit or
refused and why, and how it ended) and ``job_assignments`` (each job LiveKit assigned through the relay:
the worker, the agent identity and the registration that really served the session).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "worker_connections",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("entra_app_id", sa.String(36), nullable=False),
        sa.Column("worker_identity", sa.String(128), nullable=False),
        sa.Column("registration_id", sa.String(36), nullable=False),
        sa.Column("announced_agent_name", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(512), nullable=True),
        sa.Column("worker_id", sa.String(64), nullable=True),
        _time("opened_at"),
        _time("closed_at", nullable=True),
        sa.Column("close_code", sa.Integer, nullable=True),
        sa.Column("close_reason", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_worker_connections"),
    )
    op.create_index("ix_worker_connections_entra_app_id", "worker_connections", ["entra_app_id"])
    op.create_index("ix_worker_connections_opened_at", "worker_connections", ["opened_at"])
    op.create_table(
        "job_assignments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("room_name", sa.String(256), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("entra_app_id", sa.String(36), nullable=False),
        sa.Column("worker_identity", sa.String(128), nullable=False),
        sa.Column("registration_id", sa.String(36), nullable=False),
        sa.Column("connection_id", sa.String(36), nullable=False),
        _time("assigned_at"),
        sa.PrimaryKeyConstraint("id", name="pk_job_assignments"),
    )
    op.create_index("ix_job_assignments_job_id", "job_assignments", ["job_id"])
    op.create_index("ix_job_assignments_room_name", "job_assignments", ["room_name"])


def downgrade() -> None:
    op.drop_index("ix_job_assignments_room_name", table_name="job_assignments")
    op.drop_index("ix_job_assignments_job_id", table_name="job_assignments")
    op.drop_table("job_assignments")
    op.drop_index("ix_worker_connections_opened_at", table_name="worker_connections")
    op.drop_index("ix_worker_connections_entra_app_id", table_name="worker_connections")
    op.drop_table("worker_connections")
