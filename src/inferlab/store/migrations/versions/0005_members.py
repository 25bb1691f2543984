"""Members: each multi-device result's member devices with their own figures.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.Integer(), sa.ForeignKey("results.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(64), nullable=False, index=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("throughput_sps", sa.Float(), nullable=True),
        sa.Column("latency_median_ms", sa.Float(), nullable=True),
        sa.Column("latency_p99_ms", sa.Float(), nullable=True),
        sa.UniqueConstraint("result_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("members")
