"""Traces filed under the experiment they were sent to

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:10:00.000000

MLflow's tracing sends each trace to an experiment (the active one), and its client searches
and deletes traces by experiment. A trace made in a run is filed under the run's experiment;
one filed under none belongs to the workspace's default experiment. Indexed with the start
time: an experiment's newest traces are read from the index alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("experiment_id", sa.String(length=32), nullable=True))
    op.create_index("ix_traces_experiment_started", "traces", ["experiment_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_traces_experiment_started", table_name="traces")
    with op.batch_alter_table("traces", schema=None) as batch_op:
        batch_op.drop_column("experiment_id")
