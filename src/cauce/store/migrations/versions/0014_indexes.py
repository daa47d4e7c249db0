"""RAG indexes: specs, versions with their documents and chunks, the embedding cache, retrievals

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 15:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indexes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_sha256", sa.String(length=64), nullable=False),
        sa.Column("current_version_id", sa.String(length=32), nullable=True),
        sa.Column("next_refresh_at", sa.BigInteger(), nullable=True),
        sa.Column("refreshed_at", sa.BigInteger(), nullable=True),
        sa.Column("source_version_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexes")),
        sa.UniqueConstraint("name", name=op.f("uq_indexes_name")),
    )
    op.create_table(
        "index_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("index_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("embedding_model", sa.String(length=255), nullable=False),
        sa.Column("chunker", sa.JSON(), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("document_count", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_sha256"],
            ["artifacts.sha256"],
            name=op.f("fk_index_versions_artifact_sha256_artifacts"),
        ),
        sa.ForeignKeyConstraint(
            ["index_id"], ["indexes.id"], name=op.f("fk_index_versions_index_id_indexes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_versions")),
        sa.UniqueConstraint("index_id", "version", name=op.f("uq_index_versions_index_id_version")),
    )
    op.create_table(
        "index_documents",
        sa.Column("index_version_id", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_version_id"],
            ["index_versions.id"],
            name=op.f("fk_index_documents_index_version_id_index_versions"),
        ),
        sa.PrimaryKeyConstraint("index_version_id", "document_id", name=op.f("pk_index_documents")),
    )
    op.create_index(op.f("ix_index_documents_sha256"), "index_documents", ["sha256"], unique=False)
    op.create_table(
        "index_chunks",
        sa.Column("index_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("chunker_key", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.String(length=1000), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("chunk_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"], ["indexes.id"], name=op.f("fk_index_chunks_index_id_indexes")
        ),
        sa.PrimaryKeyConstraint("index_id", "id", name=op.f("pk_index_chunks")),
    )
    op.create_index(
        "ix_index_chunks_document",
        "index_chunks",
        ["index_id", "document_id", "document_sha256"],
        unique=False,
    )
    op.create_table(
        "embeddings",
        sa.Column("model_id", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "sha256", name=op.f("pk_embeddings")),
    )
    op.create_table(
        "retrievals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("index_version_id", sa.String(length=32), nullable=False),
        sa.Column("query_sha256", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_version_id"],
            ["index_versions.id"],
            name=op.f("fk_retrievals_index_version_id_index_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrievals")),
    )
    op.create_index(
        op.f("ix_retrievals_index_version_id"), "retrievals", ["index_version_id"], unique=False
    )
    op.create_table(
        "retrieval_hits",
        sa.Column("retrieval_id", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.Text(), nullable=False),
        sa.Column("document_id", sa.String(length=1000), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["retrieval_id"],
            ["retrievals.id"],
            name=op.f("fk_retrieval_hits_retrieval_id_retrievals"),
        ),
        sa.PrimaryKeyConstraint("retrieval_id", "rank", name=op.f("pk_retrieval_hits")),
    )
    op.create_index(
        op.f("ix_retrieval_hits_document_id"), "retrieval_hits", ["document_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_retrieval_hits_document_id"), table_name="retrieval_hits")
    op.drop_table("retrieval_hits")
    op.drop_index(op.f("ix_retrievals_index_version_id"), table_name="retrievals")
    op.drop_table("retrievals")
    op.drop_table("embeddings")
    op.drop_index("ix_index_chunks_document", table_name="index_chunks")
    op.drop_table("index_chunks")
    op.drop_index(op.f("ix_index_documents_sha256"), table_name="index_documents")
    op.drop_table("index_documents")
    op.drop_table("index_versions")
    op.drop_table("indexes")
