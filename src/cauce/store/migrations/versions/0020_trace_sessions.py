"""The session and the user each trace belongs to

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 18:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("session_id", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("user_id", sa.String(length=256), nullable=True))
    op.create_index(op.f("ix_traces_session_id"), "traces", ["session_id"], unique=False)
    op.create_index(op.f("ix_traces_user_id"), "traces", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_traces_user_id"), table_name="traces")
    op.drop_index(op.f("ix_traces_session_id"), table_name="traces")
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("user_id")
        batch.drop_column("session_id")
