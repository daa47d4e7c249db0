"""Alembic migrations, run programmatically under a lock so that concurrent first uses agree."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at Cauce's migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, lock_path: Path | None) -> None:
    """Bring the database to the newest revision."""
    from alembic import command
    from sqlalchemy import text

    with _file_lock(lock_path), engine.connect() as conn:
        if engine.dialect.name == "sqlite" and _restored(conn):
            return
        if engine.dialect.name == "postgresql":
            # Serialises concurrent first uses across processes and machines.
            conn.execute(text("SELECT pg_advisory_lock(722153)"))
            conn.commit()
        try:
            with conn.begin():
                command.upgrade(alembic_config(conn), "head")
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(722153)"))
                conn.commit()


# A new SQLite database is a copy of one migrated once per process (alembic takes ~0.7 s for
# the whole chain; a copy a few milliseconds): path of that template by head revision.
_templates: dict[str, Path] = {}


def _restored(conn: Connection) -> bool:
    """Fill an empty SQLite database with a copy of a freshly migrated one; whether it was
    empty (a database with any table is left to the migrations)."""
    from sqlalchemy import inspect

    empty = not inspect(conn).get_table_names()
    conn.rollback()  # the inspection's read transaction: a backup needs none open
    if not empty:
        return False
    target = conn.connection.driver_connection
    assert isinstance(target, sqlite3.Connection)
    source = sqlite3.connect(_template())
    try:
        source.backup(target)
    finally:
        source.close()
    return True


def _template() -> Path:
    """A SQLite database migrated to the head revision, made once per process."""
    from alembic import command
    from sqlalchemy import create_engine

    head = head_revision()
    if head not in _templates:
        folder = Path(tempfile.mkdtemp(prefix="cauce-schema-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / f"{head}.db"
        engine = create_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
        finally:
            engine.dispose()
        _templates[head] = path
    return _templates[head]


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
