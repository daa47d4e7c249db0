"""Prompts' and prompt versions' tags

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 12:55:00.000000

Key-value labels on a prompt (its task, its team) and on a version, as models and their
versions have; MLflow's prompt registry keeps a prompt's type and model configuration in them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_tags",
        sa.Column("prompt_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name=op.f("fk_prompt_tags_prompt_id_prompts")
        ),
        sa.PrimaryKeyConstraint("prompt_id", "key", name=op.f("pk_prompt_tags")),
    )
    op.create_table(
        "prompt_version_tags",
        sa.Column("prompt_version_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_prompt_version_tags_prompt_version_id_prompt_versions"),
        ),
        sa.PrimaryKeyConstraint("prompt_version_id", "key", name=op.f("pk_prompt_version_tags")),
    )


def downgrade() -> None:
    op.drop_table("prompt_version_tags")
    op.drop_table("prompt_tags")
