"""An index on metrics (key, value): search_runs ordered by a metric walks it

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 21:00:00.000000
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_metrics_key_value", "metrics", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_metrics_key_value", table_name="metrics")
