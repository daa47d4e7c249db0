"""The usage reports already added, so that a report sent again is not counted twice

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 03:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_usage_reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_api_key_usage_reports_endpoint_id_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key_usage_reports")),
    )
    op.create_index(
        op.f("ix_api_key_usage_reports_endpoint_id"),
        "api_key_usage_reports",
        ["endpoint_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_api_key_usage_reports_at"), "api_key_usage_reports", ["at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_api_key_usage_reports_at"), table_name="api_key_usage_reports")
    op.drop_index(op.f("ix_api_key_usage_reports_endpoint_id"), table_name="api_key_usage_reports")
    op.drop_table("api_key_usage_reports")
