"""Migrations over a store that already holds data: each upgrade keeps what was there."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from cauce.store import HEAD_REVISION, insert_ignore, now_ms
from cauce.store.migrate import alembic_config
from cauce.store.schema import lineage_edges
from cauce.workspace import Workspace

SHA256 = "ab" * 32


def _at_revision(url: str, revision: str, rows: list[dict[str, object]]) -> None:
    """Bring an empty database to ``revision`` and insert lineage rows as that schema holds them."""
    from alembic import command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
            for row in rows:
                conn.execute(
                    text(
                        "INSERT INTO lineage_edges "
                        "(src_kind, src_id, dst_kind, dst_id, relation, created_at) "
                        "VALUES (:src_kind, :src_id, :dst_kind, :dst_id, :relation, :created_at)"
                    ),
                    row,
                )
    finally:
        engine.dispose()


@pytest.mark.empty_store
def test_upgrade_from_0005_keeps_lineage_edges_and_widens_node_ids(
    any_workspace: Workspace,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cauce.store.schema import metadata

    old = [
        {
            "src_kind": "dataset_version",
            "src_id": "1" * 32,
            "dst_kind": "run",
            "dst_id": "2" * 32,
            "relation": "input",
            "created_at": 1,
        },
        {
            "src_kind": "run",
            "src_id": "2" * 32,
            "dst_kind": "model_version",
            "dst_id": "3" * 32,
            "relation": "produced",
            "created_at": 2,
        },
    ]
    _at_revision(any_workspace.settings.db_url, "0005", old)
    store = any_workspace.store
    if not store.is_sqlite:  # SQLite never enforced the length; PostgreSQL did
        engine = create_engine(any_workspace.settings.db_url)
        try:
            with pytest.raises(Exception, match="too long"), engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO lineage_edges "
                        "(src_kind, src_id, dst_kind, dst_id, relation, created_at) "
                        f"VALUES ('run', '{'2' * 32}', 'artifact', '{SHA256}', 'logged', 3)"
                    )
                )
        finally:
            engine.dispose()

    assert store.upgrade() == ("0005", HEAD_REVISION)

    e = lineage_edges.c
    columns = (e.src_kind, e.src_id, e.dst_kind, e.dst_id, e.relation, e.created_at)
    with store.read() as conn:
        kept = [dict(r._mapping) for r in conn.execute(select(*columns).order_by(e.id))]
    assert kept == old
    with store.write() as conn:
        # A sha256 is a node now, and the unique constraint survived the rebuild.
        edge = {**old[0], "dst_kind": "artifact", "dst_id": SHA256, "created_at": now_ms()}
        assert insert_ignore(conn, lineage_edges, edge)
        assert not insert_ignore(conn, lineage_edges, {**edge, "created_at": now_ms()})
        assert not insert_ignore(conn, lineage_edges, {**old[1], "created_at": now_ms()})
    with store.read() as conn:
        assert conn.execute(select(e.dst_id).where(e.dst_kind == "artifact")).scalar() == SHA256
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
