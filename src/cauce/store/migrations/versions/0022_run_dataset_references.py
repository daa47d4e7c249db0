"""The data a run read that Cauce does not hold, as its client described it

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 10:40:00.000000

MLflow's datasets (``mlflow.log_input``, and every autolog): a name, a digest, a source, a
schema and a profile, kept with the run so that ``get_run`` and the run's page show them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_dataset_references",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("context", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_dataset_references_run_id_runs")
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "name", "digest", "context", name=op.f("pk_run_dataset_references")
        ),
    )


def downgrade() -> None:
    op.drop_table("run_dataset_references")
