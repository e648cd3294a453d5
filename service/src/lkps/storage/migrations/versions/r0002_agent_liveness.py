"""Agent liveness: the latest platform token's expiry and the revocation time on ``agents``.

Existing rows get the expiry of their newest audited token; a row without one keeps NULL, which the
service reads as last registration + ``LKPS_AGENT_TOKEN_TTL``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("agents", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE agents SET token_expires_at = (SELECT max(r.expires_at) FROM agent_registrations r"
        " WHERE r.entra_app_id = agents.entra_app_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("token_expires_at")
