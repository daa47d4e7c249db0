"""MLflow 3's logged models, for the MLflow client against cauce server

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 17:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("model_type", sa.String(length=255), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_logged_models_experiment_id_experiments"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_logged_models_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logged_models")),
    )
    op.create_index(
        op.f("ix_logged_models_experiment_id"), "logged_models", ["experiment_id"], unique=False
    )
    op.create_index(op.f("ix_logged_models_run_id"), "logged_models", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_logged_models_run_id"), table_name="logged_models")
    op.drop_index(op.f("ix_logged_models_experiment_id"), table_name="logged_models")
    op.drop_table("logged_models")
