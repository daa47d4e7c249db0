"""Traces' tags

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 13:05:00.000000

Key-value labels on a trace (its environment, a reviewer's verdict): from its spans, from
MLflow's trace info and ``set_trace_tag``, or set afterwards; the traces list filters by them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_tags",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "key", name=op.f("pk_trace_tags")),
    )
    op.create_index("ix_trace_tags_key", "trace_tags", ["key"])


def downgrade() -> None:
    op.drop_index("ix_trace_tags_key", table_name="trace_tags")
    op.drop_table("trace_tags")
