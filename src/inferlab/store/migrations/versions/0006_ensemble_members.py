"""Ensemble members: a member of an ensemble trial is a model, with its figures alone beside those in the
ensemble, the interference ratio and its own accuracy.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("alone_throughput_sps", "alone_latency_median_ms", "interference", "accuracy")


def upgrade() -> None:
    with op.batch_alter_table("members") as t:
        t.add_column(sa.Column("model", sa.String(200), nullable=True))
        for name in _COLUMNS:
            t.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members") as t:
        for name in ("model", *_COLUMNS):
            t.drop_column(name)
