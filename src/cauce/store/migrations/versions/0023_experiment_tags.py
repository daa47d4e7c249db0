"""Experiments' tags

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 10:55:00.000000

Key-value labels on an experiment (its team, its project), as runs have; MLflow's client sets
them with ``set_experiment_tag`` and filters experiments by them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_tags_experiment_id_experiments"),
        ),
        sa.PrimaryKeyConstraint("experiment_id", "key", name=op.f("pk_experiment_tags")),
    )


def downgrade() -> None:
    op.drop_table("experiment_tags")
