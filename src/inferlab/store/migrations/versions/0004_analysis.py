"""Analysis: each result's per-layer profile, one row per layer, and the device peaks the roofline reads.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.Integer(), sa.ForeignKey("results.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("kernel", sa.Text(), nullable=True),
        sa.Column("precision", sa.String(32), nullable=True),
        sa.Column("time_ms", sa.Float(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("cpu_ms", sa.Float(), nullable=True),
        sa.Column("device", sa.String(128), nullable=True),
        sa.UniqueConstraint("result_id", "position"),
    )
    op.create_table(
        "peaks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("environment_id", sa.String(32), sa.ForeignKey("environments.id"), nullable=False, index=True),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("precision", sa.String(32), nullable=False),
        sa.Column("flops_per_s", sa.Float(), nullable=False),
        sa.Column("bytes_per_s", sa.Float(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("measured_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("environment_id", "backend", "device", "precision"),
    )


def downgrade() -> None:
    op.drop_table("peaks")
    op.drop_table("layers")
