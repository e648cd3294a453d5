"""Initial schema: agents, agent_registrations, agent_jobs, webhook_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("entra_app_id", sa.String(36), nullable=False),
        sa.Column("enforce_client_authz", sa.Boolean(), nullable=False),
        _ts("first_registered_at", nullable=False),
        _ts("last_registered_at", nullable=False),
        sa.Column("last_worker_identity", sa.String(128), nullable=False),
        sa.Column("registration_count", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("entra_app_id", name="pk_agents"),
    )
    op.create_table(
        "agent_registrations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("entra_app_id", sa.String(36), nullable=False),
        sa.Column("worker_identity", sa.String(128), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("requester_email", sa.String(320), nullable=True),
        sa.Column("identity_mode", sa.String(16), nullable=False),
        sa.Column("enforce_client_authz", sa.Boolean(), nullable=False),
        _ts("issued_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default="false", nullable=False),
        _ts("revoked_at"),
        sa.PrimaryKeyConstraint("id", name="pk_agent_registrations"),
    )
    op.create_index("ix_agent_registrations_entra_app_id", "agent_registrations", ["entra_app_id"])
    op.create_index("ix_agent_registrations_issued_at", "agent_registrations", ["issued_at"])
    op.create_table(
        "agent_jobs",
        sa.Column("room_name", sa.String(256), nullable=False),
        sa.Column("room_sid", sa.String(64), nullable=True),
        sa.Column("agent_entra_app_id", sa.String(36), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("participant_identity", sa.String(320), nullable=True),
        sa.Column("participant_cwid", sa.String(128), nullable=True),
        sa.Column("agent_identity", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("requested_at"),
        _ts("room_created_at"),
        _ts("participant_joined_at"),
        _ts("agent_joined_at"),
        _ts("participant_left_at"),
        _ts("agent_left_at"),
        sa.Column("disconnect_reason", sa.String(64), nullable=True),
        sa.Column("agent_disconnect_reason", sa.String(64), nullable=True),
        _ts("finished_at"),
        sa.Column("session_duration_s", sa.Float(), nullable=True),
        sa.Column("participant_duration_s", sa.Float(), nullable=True),
        sa.Column("agent_join_delay_s", sa.Float(), nullable=True),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("room_name", name="pk_agent_jobs"),
    )
    op.create_index("ix_agent_jobs_agent_entra_app_id", "agent_jobs", ["agent_entra_app_id"])
    op.create_index("ix_agent_jobs_status", "agent_jobs", ["status"])
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("room_name", sa.String(256), nullable=True),
        _ts("created_at"),
        _ts("received_at", nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_events"),
    )


def downgrade() -> None:
    op.drop_table("webhook_events")
    op.drop_index("ix_agent_jobs_status", table_name="agent_jobs")
    op.drop_index("ix_agent_jobs_agent_entra_app_id", table_name="agent_jobs")
    op.drop_table("agent_jobs")
    op.drop_index("ix_agent_registrations_issued_at", table_name="agent_registrations")
    op.drop_index("ix_agent_registrations_entra_app_id", table_name="agent_registrations")
    op.drop_table("agent_registrations")
    op.drop_table("agents")
