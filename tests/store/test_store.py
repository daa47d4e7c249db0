"""The metadata store: migrations, schema, SQLite settings and how database failures surface.

Everything that touches a database runs on SQLite and on PostgreSQL (``any_workspace``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

import cauce
from cauce import workspace as workspace_module
from cauce.errors import BackendError, CauceError
from cauce.store import HEAD_REVISION, Store
from cauce.store.migrate import head_revision
from cauce.store.schema import metadata
from cauce.tracking import experiments, runs
from cauce.workspace import Workspace
from stored import row_count
from together import at_once

# -- migrations -----------------------------------------------------------------------------


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    assert head_revision() == HEAD_REVISION


@pytest.mark.empty_store
def test_fresh_database_is_migrated_on_first_use(any_workspace: Workspace) -> None:
    store = any_workspace.store
    if store.is_sqlite:
        assert not (any_workspace.settings.state_dir / "cauce.db").exists()
    assert store.current_revision() is None

    assert experiments.list_experiments() == []  # first use

    assert store.current_revision() == HEAD_REVISION
    for table in metadata.tables:
        assert row_count(any_workspace, table) == 0


@pytest.mark.empty_store
def test_upgrade_is_idempotent_and_keeps_data(any_workspace: Workspace) -> None:
    store = any_workspace.store
    assert store.upgrade() == (None, HEAD_REVISION)
    experiments.create_experiment("kept")

    assert store.upgrade() == (HEAD_REVISION, HEAD_REVISION)
    assert store.upgrade() == (HEAD_REVISION, HEAD_REVISION)

    # A second Store on the same database sees it current and migrates nothing.
    other = Store(any_workspace.settings.db_url)
    try:
        assert other.current_revision() == HEAD_REVISION
        assert other.upgrade() == (HEAD_REVISION, HEAD_REVISION)
    finally:
        other.close()
    assert [e.name for e in experiments.list_experiments()] == ["kept"]
    assert row_count(any_workspace, "experiments") == 1
    from sqlalchemy import text

    with store.read() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [HEAD_REVISION]


def test_migrated_schema_matches_the_table_definitions(any_workspace: Workspace) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = any_workspace.store
    store.upgrade()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_sqlite_runs_in_wal_mode_with_the_busy_timeout(workspace: Workspace) -> None:
    store = workspace.store
    with store.read() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert pragma == {
        "journal_mode": "wal",
        "busy_timeout": 60000,
        "synchronous": 1,
        "foreign_keys": 1,
    }

    # The metric hot path uses its own long-lived connection: it must be configured the same way.
    cur = store._fast_connection().cursor()
    try:
        assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cur.execute("PRAGMA busy_timeout").fetchone()[0] == 60000
        assert cur.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        cur.close()


def test_sqlite_settings_come_from_the_environment(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAUCE_SQLITE_SYNC", "FULL")
    monkeypatch.setenv("CAUCE_BUSY_TIMEOUT_MS", "1234")
    workspace_module.reset()
    ws = workspace_module.current()
    with ws.store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234


# -- failures of the database ---------------------------------------------------------------


def _first_uses() -> dict[str, Any]:
    return {
        "start_run": lambda: cauce.start_run(),
        "create_run": lambda: runs.create_run("e"),
        "log_metric": lambda: runs.log_metric("0" * 32, "loss", 1.0),
        "get_run": lambda: runs.get_run("0" * 32),
        "list_experiments": lambda: experiments.list_experiments(),
        "upgrade": lambda: workspace_module.current().store.upgrade(),
        "current_revision": lambda: workspace_module.current().store.current_revision(),
    }


@pytest.mark.parametrize("first_use", list(_first_uses()))
def test_garbage_sqlite_file_is_reported_as_corrupted(workspace: Workspace, first_use: str) -> None:
    db = workspace.settings.state_dir / "cauce.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"definitely not SQLite \x00\xff\x13" * 400)

    with pytest.raises(BackendError) as info:
        _first_uses()[first_use]()

    assert info.value.code == "store-corrupted"
    assert str(db) in info.value.message
    assert info.value.hint
    assert cauce.active_run() is None


def test_damaged_sqlite_pages_are_reported_as_corrupted(workspace: Workspace) -> None:
    run = runs.create_run("e")
    db = workspace.settings.state_dir / "cauce.db"
    workspace_module.reset()  # closes every connection, checkpointing the WAL into the file
    data = bytearray(db.read_bytes())
    # Keep the 100-byte header, wreck the rest: the schema page and every table.
    data[100:] = bytes((i * 37 + 11) % 256 for i in range(len(data) - 100))
    db.write_bytes(bytes(data))

    with pytest.raises(BackendError) as info:
        runs.get_run(run.run_id)
    assert info.value.code == "store-corrupted"
    assert str(db) in info.value.message


def test_unreachable_postgres_is_a_backend_error(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAUCE_DB_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing")
    workspace_module.reset()
    with pytest.raises(BackendError) as info:
        experiments.list_experiments()
    assert "127.0.0.1:1" in info.value.message
    assert "secret" not in str(info.value)


def test_unknown_database_driver_is_a_backend_error(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAUCE_DB_URL", "nosuchdb://somewhere/db")
    workspace_module.reset()
    with pytest.raises(BackendError) as info:
        experiments.list_experiments()
    assert "nosuchdb://somewhere/db" in info.value.message


def test_a_failed_write_transaction_rolls_back(any_workspace: Workspace) -> None:
    from cauce.store import new_id, now_ms
    from cauce.store.schema import experiments as experiments_table

    store = any_workspace.store
    now = now_ms()
    row = {"id": new_id(), "name": "half", "lifecycle_stage": "active"}
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(experiments_table.insert().values(**row, created_at=now, updated_at=now))
        raise RuntimeError("boom")
    assert row_count(any_workspace, "experiments") == 0

    # A constraint violation surfaces as a CauceError, and the transaction leaves nothing.
    with pytest.raises(CauceError), store.write() as conn:
        conn.execute(experiments_table.insert().values(**row, created_at=now, updated_at=now))
        duplicate = {**row, "id": new_id(), "created_at": now, "updated_at": now}
        conn.execute(experiments_table.insert().values(**duplicate))
    assert row_count(any_workspace, "experiments") == 0


def test_the_store_path_is_created_on_demand(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "cauce.db"
    store = Store(f"sqlite:///{db}")
    try:
        assert store.upgrade() == (None, HEAD_REVISION)
    finally:
        store.close()
    assert db.is_file()


def test_a_new_sqlite_database_opened_at_once_comes_up(tmp_path: Path) -> None:
    # Connections switching a new database to WAL at the same time were told "database is
    # locked" at once, without waiting (processes on a new workspace): 5-8% of these rounds.
    for attempt in range(100):
        stores = [Store(f"sqlite:///{tmp_path / f'apart{attempt}.db'}") for _ in range(6)]
        try:
            at_once([store.current_revision for store in stores])
        finally:
            for store in stores:
                store.close()

    def count(store: Store) -> int:
        with store.read() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM experiments").scalar())

    for attempt in range(5):  # threads of one store: one migrates, the others wait
        shared = Store(f"sqlite:///{tmp_path / f'shared{attempt}.db'}")
        try:
            assert at_once([partial(count, shared)] * 6) == [0] * 6
        finally:
            shared.close()


def test_insert_ignore_says_whether_it_inserted_and_upsert_replaces(
    any_workspace: Workspace,
) -> None:
    from sqlalchemy import select

    from cauce.store import insert_ignore, upsert
    from cauce.store.schema import artifacts

    row = {
        "sha256": "a" * 64,
        "size": 1,
        "uri": "file:///a",
        "media_type": "text/plain",
        "created_at": 1,
    }
    with any_workspace.store.write() as conn:
        assert insert_ignore(conn, artifacts, row) is True
        assert insert_ignore(conn, artifacts, {**row, "size": 2}) is False
    with any_workspace.store.write() as conn:
        upsert(conn, artifacts, {**row, "size": 3}, ("sha256",))
        upsert(conn, artifacts, {**row, "sha256": "b" * 64}, ("sha256",))
    with any_workspace.store.read() as conn:
        sizes = dict(conn.execute(select(artifacts.c.sha256, artifacts.c.size)).all())
    assert sizes == {"a" * 64: 3, "b" * 64: 1}


def test_database_from_a_newer_cauce_is_a_clear_error(any_workspace: Workspace) -> None:
    from sqlalchemy import text

    store = any_workspace.store
    store.upgrade()
    with store.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    experiments.create_experiment("untouched")
    workspace_module.reset()

    for use in (experiments.list_experiments, lambda: workspace_module.current().store.upgrade()):
        with pytest.raises(BackendError) as info:
            use()
        assert info.value.code == "store-revision-unknown"
        assert "9999" in info.value.message
        assert info.value.hint and "upgrade Cauce" in info.value.hint
        workspace_module.reset()
    assert workspace_module.current().store.current_revision() == "9999"


def test_a_writer_that_stays_locked_out_gets_a_store_locked_error(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    run_id = runs.create_run("e").run_id
    monkeypatch.setenv("CAUCE_BUSY_TIMEOUT_MS", "200")
    workspace_module.reset()
    before = runs.get_run(run_id)

    holder = sqlite3.connect(workspace.settings.state_dir / "cauce.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        for write in (
            lambda: runs.log_metric(run_id, "m", 1.0),
            lambda: runs.log_metrics(run_id, {"a": 1.0, "b": 2.0}),
            lambda: runs.set_tags(run_id, {"t": "v"}),
            lambda: runs.create_run("e"),
        ):
            with pytest.raises(BackendError) as info:
                write()
            assert info.value.code == "store-locked"
            assert "CAUCE_BUSY_TIMEOUT_MS" in str(info.value)
        assert runs.get_run(run_id) == before  # readers are not blocked in WAL mode
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    runs.log_metric(run_id, "m", 1.0)  # the lock is gone: writes go through again
    assert runs.get_run(run_id).data.metrics == {"m": 1.0}
