"""GenAI serving: deployments of prompts, flows and connections; API keys and their usage;
chunks quarantined by injection scans; the model catalog

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("target_kind", sa.String(length=16), nullable=False, server_default="model")
        )
        batch_op.alter_column("model_version_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(sa.Column("prompt_version_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("flow_version_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("connection_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deployments_prompt_version_id_prompt_versions"),
            "prompt_versions",
            ["prompt_version_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deployments_flow_version_id_flow_versions"),
            "flow_versions",
            ["flow_version_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deployments_connection_id_connections"),
            "connections",
            ["connection_id"],
            ["id"],
        )
    op.create_table(
        "index_quarantine",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("index_id", sa.String(length=32), nullable=False),
        sa.Column("index_version_id", sa.String(length=32), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.String(length=1000), nullable=False),
        sa.Column("chunk_id", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"], ["indexes.id"], name=op.f("fk_index_quarantine_index_id_indexes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_quarantine")),
    )
    op.create_index(
        op.f("ix_index_quarantine_index_id"), "index_quarantine", ["index_id"], unique=False
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name=op.f("fk_api_keys_endpoint_id_endpoints")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("endpoint_id", "name", name=op.f("uq_api_keys_endpoint_id_name")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_keys_key_sha256")),
    )
    op.create_index(op.f("ix_api_keys_endpoint_id"), "api_keys", ["endpoint_id"], unique=False)
    op.create_table(
        "api_key_usage",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_api_key_usage_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "period", name=op.f("pk_api_key_usage")),
    )
    op.create_table(
        "catalog_models",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_models")),
        sa.UniqueConstraint("name", name=op.f("uq_catalog_models_name")),
    )


def downgrade() -> None:
    op.drop_table("catalog_models")
    op.drop_table("api_key_usage")
    op.drop_index(op.f("ix_api_keys_endpoint_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_index_quarantine_index_id"), table_name="index_quarantine")
    op.drop_table("index_quarantine")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_deployments_connection_id_connections"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_deployments_flow_version_id_flow_versions"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_deployments_prompt_version_id_prompt_versions"), type_="foreignkey"
        )
        batch_op.drop_column("connection_id")
        batch_op.drop_column("flow_version_id")
        batch_op.drop_column("prompt_version_id")
        batch_op.alter_column(
            "model_version_id", existing_type=sa.String(length=32), nullable=False
        )
        batch_op.drop_column("target_kind")
