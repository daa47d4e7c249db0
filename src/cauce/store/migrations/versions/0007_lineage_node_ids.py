"""lineage node ids wide enough for artifact sha256s

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-12 09:00:00.000000

Entity ids are 32 hex characters; an artifact is named by its 64-hex sha256, so the lineage
edge columns that hold either grow to 64. SQLite rebuilds the table (batch mode), keeping rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        for column in ("src_id", "dst_id"):
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=32),
                type_=sa.String(length=64),
                existing_nullable=False,
            )


def downgrade() -> None:
    # Artifact nodes do not fit the narrower columns: their edges go first.
    op.execute("DELETE FROM lineage_edges WHERE src_kind = 'artifact' OR dst_kind = 'artifact'")
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        for column in ("src_id", "dst_id"):
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=64),
                type_=sa.String(length=32),
                existing_nullable=False,
            )
