"""judge answers cached by model, judge prompt, params and inputs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "judge_answers",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_judge_answers")),
    )


def downgrade() -> None:
    op.drop_table("judge_answers")
