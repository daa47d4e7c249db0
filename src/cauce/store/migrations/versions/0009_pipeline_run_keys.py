"""pipeline runs tagged with the idempotency key of the work they do

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-16 09:00:00.000000

An alert's ``trigger`` action tags the pipeline run it starts with the action's idempotency key
(``<alert id>.<position>``), so that a new attempt after an agent died finds the run: it records
one that succeeded instead of starting another, and resumes one left RUNNING. Existing runs
have no key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_pipeline_runs_idempotency_key"), ["idempotency_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_runs_idempotency_key"))
        batch_op.drop_column("idempotency_key")
