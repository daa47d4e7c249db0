"""The metadata store: one database (SQLite or PostgreSQL) behind SQLAlchemy Core.

The store owns connections, transactions, migrations and the metric hot path; the domain modules
(tracking, registry, lineage) own the rules and write their rows through ``Store.write()``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cauce.errors import BackendError, CauceError, InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection, Engine, Table

T = TypeVar("T")
_HEX = frozenset("0123456789abcdef")

# The newest Alembic revision; checked on first use so that Alembic is imported only to migrate.
HEAD_REVISION = "0026"


def new_id() -> str:
    """A new entity identifier: 32 hex characters."""
    return uuid.uuid4().hex


def id_matches(column: ColumnElement[str], given: str, *, length: int = 32) -> ColumnElement[bool]:
    """Where ``column`` holds the id ``given``, or, when ``given`` is the start of one (4 or more
    hex characters, any case: ids as the CLI, the UI and the lineage print them), an id that
    starts with it. ``length`` is a whole id's.

    A start is looked up as the range ``start <= id < start + "g"``: every id that starts with it
    sorts there, in SQLite's and PostgreSQL's collations alike, and the id's index answers it
    (``LIKE 'start%'`` scans the table unless the collation is C).
    """
    text = given.lower()
    if not set(text) <= _HEX:
        return column == given
    if not 4 <= len(text) < length:
        return column == text
    return (column >= text) & (column < text + "g")


def only_match(
    rows: Sequence[T], given: str, noun: str, field: str, *, hint: str | None = None
) -> T:
    """The one row an id or its start names (query them with :func:`id_matches`, two at most):
    NotFound for none, InvalidInput naming ``field`` when the start is several ids'."""
    if not rows:
        raise NotFound(f"{noun} {given!r} does not exist", hint=hint, details={"field": field})
    if len(rows) > 1:
        raise InvalidInput(
            f"{given!r} is the start of several {noun}s' ids",
            hint="give more of it",
            details={"field": field},
        )
    return rows[0]


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch."""
    return int(time.time() * 1000)


class Store:
    """Connections, transactions and migrations of one metadata database."""

    def __init__(self, url: str, *, sqlite_sync: str = "normal", busy_timeout_ms: int = 60000):
        self.url = url
        self.sqlite_sync = sqlite_sync
        self.busy_timeout_ms = busy_timeout_ms
        self._engine: Engine | None = None
        self._ready = False
        self._fast_conn: Any = None
        self._fast_lock = threading.Lock()
        # Threads of one store take turns on its first use: one engine, one migration.
        self._first_use = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is an embedded SQLite database."""
        return self.url.startswith("sqlite")

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        if self.is_sqlite:
            return self.url
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created on first use, with the schema brought up to date."""
        if self._ready and self._engine is not None:
            return self._engine
        with self._first_use:
            if self._engine is None:
                self._engine = self._create_engine()
            if not self._ready:
                self._ensure_schema(self._engine)
                self._ready = True
            return self._engine

    def _create_engine(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.exc import ArgumentError

        try:
            if not self.is_sqlite:
                return create_engine(self.url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:
            raise BackendError(f"cannot use database URL {self.display_url}: {exc}") from None

        path = self.url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            connect_args={"check_same_thread": False, "timeout": self.busy_timeout_ms / 1000},
        )
        sync = self.sqlite_sync.upper()
        busy = self.busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _configure(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below) so that writers take the lock up front.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy}")
            _set_wal(cur, busy)
            cur.execute(f"PRAGMA synchronous = {sync}")
            # A batch of many metric keys touches as many index pages; with the default
            # checkpoint every 1,000 pages, each such commit would also copy and fsync the
            # database. Checkpointing every 10,000 pages (~40 MB of WAL) makes it 3x faster;
            # the WAL file is truncated back to 64 MB after a checkpoint.
            cur.execute("PRAGMA wal_autocheckpoint = 10000")
            cur.execute("PRAGMA journal_size_limit = 67108864")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # BEGIN IMMEDIATE waits on busy_timeout for the write lock; a deferred transaction
            # that reads then writes can instead fail at once with SQLITE_BUSY.
            write = conn.get_execution_options().get("cauce_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction, committed when the block ends and rolled back on error."""
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(cauce_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._translate_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        try:
            yield
        except CauceError:
            raise
        except DBAPIError as exc:
            raise self.translate(exc.orig or exc) from exc
        except SQLAlchemyError as exc:
            raise self.translate(exc) from exc
        except Exception as exc:
            if is_driver_error(exc):  # from the DB-API connection of the hot path
                raise self.translate(exc) from exc
            raise

    def translate(self, exc: BaseException) -> BackendError:
        """A BackendError that says what went wrong with the database, in one line."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "file is not a database" in text or "malformed" in text:
            return BackendError(
                f"the metadata store {self.display_url} is corrupted: {text}",
                code="store-corrupted",
                hint="restore the file from a backup or point CAUCE_DB_URL at another database",
            )
        if "database is locked" in text:
            return BackendError(
                f"the metadata store {self.display_url} stayed locked by another writer: {text}",
                code="store-locked",
                hint="raise CAUCE_BUSY_TIMEOUT_MS",
            )
        return BackendError(f"metadata store {self.display_url} failed: {text}")

    # -- the metric hot path --------------------------------------------------------------

    def insert_fast(self, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows in one durable transaction on a long-lived connection.

        This is the hot path of ``log_metric``: each row is a tuple in the table's column order
        (autoincrement columns left out), sent through the DB-API driver with a statement made
        once, committed before returning. Raises the driver's IntegrityError unchanged so that
        callers can name the missing parent row.
        """
        if not rows:
            return
        sql = _positional_insert_sql(table, self.is_sqlite)
        with self._fast_lock:
            conn = self._fast_connection()
            cur = conn.cursor()
            try:
                if len(rows) == 1:
                    cur.execute(sql, rows[0])  # autocommit: one implicit transaction
                elif self.is_sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                    try:
                        cur.executemany(sql, rows)
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
                    cur.execute("COMMIT")
                else:
                    with conn.transaction():
                        cur.executemany(sql, rows)
            finally:
                cur.close()

    @contextmanager
    def fast_write(self) -> Iterator[FastTransaction]:
        """A write transaction on the hot-path connection, for the few statements of a run's
        start and end: plain SQL through the DB-API driver, without SQLAlchemy's per-statement
        cost (profiling showed it dominating an empty run).
        """
        with self._fast_lock, self._translate_errors():
            conn = self._fast_connection()
            cur = conn.cursor()
            try:
                if self.is_sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                    try:
                        yield FastTransaction(self, cur)
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
                    cur.execute("COMMIT")
                else:
                    with conn.transaction():
                        yield FastTransaction(self, cur)
            finally:
                cur.close()

    def statement_fast(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement on the hot-path connection, atomic on its own (autocommit), ``:name``
        placeholders; its rows. Driver errors come back as BackendError caused by them."""
        with self._fast_lock, self._translate_errors():
            cur = self._fast_connection().cursor()
            try:
                cur.execute(sql if self.is_sqlite else _pyformat(sql), params)
                return list(cur.fetchall()) if cur.description else []
            finally:
                cur.close()

    def is_integrity_error(self, exc: BaseException) -> bool:
        """Whether a driver exception is a constraint violation."""
        return type(exc).__name__ in ("IntegrityError", "ForeignKeyViolation", "UniqueViolation")

    def _fast_connection(self) -> Any:
        if self._fast_conn is None:
            with self._translate_errors():
                raw = self.engine.raw_connection()
            self._fast_conn = raw.driver_connection
            # Out of the pool for good: autocommit must not leak to pooled transactions.
            raw.detach()
            self._fast_raw = raw
            if not self.is_sqlite:
                self._fast_conn.autocommit = True
        return self._fast_conn

    # -- schema ---------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None for an empty database."""
        engine = self._engine or self._create_engine()
        self._engine = engine
        return self._read_revision(engine)

    def _read_revision(self, engine: Engine) -> str | None:
        from sqlalchemy import inspect, text

        with self._translate_errors(), engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def _ensure_schema(self, engine: Engine) -> None:
        revision = self._read_revision(engine)
        if revision == HEAD_REVISION:
            return
        self._upgrade(engine)

    def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending migration; return the revisions before and after."""
        engine = self._engine or self._create_engine()
        self._engine = engine
        before = self._read_revision(engine)
        self._upgrade(engine)
        self._ready = True
        return before, HEAD_REVISION

    def _upgrade(self, engine: Engine) -> None:
        from alembic.util import CommandError

        from cauce.store.migrate import upgrade

        with self._translate_errors():
            try:
                upgrade(engine, lock_path=self._lock_path())
            except CommandError as exc:
                # Typically a database migrated by a newer Cauce: its revision is unknown here.
                raise BackendError(
                    f"cannot migrate the metadata store {self.display_url}: {exc}",
                    code="store-revision-unknown",
                    hint="a newer Cauce may have migrated it: upgrade Cauce, "
                    "or point CAUCE_DB_URL at another database",
                ) from exc

    def _lock_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.url.split("///", 1)[-1]
        return Path(path + ".migrate.lock") if path and path != ":memory:" else None

    def close(self) -> None:
        """Release every connection."""
        if self._fast_conn is not None:
            self._fast_raw.close()
            self._fast_conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._ready = False


def _set_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Put the database in WAL mode, waiting up to the busy timeout for other connections.

    SQLite answers "database is locked" at once, without its busy handler, when connections
    to a new database switch it to WAL at the same time (processes on a new workspace).
    """
    import sqlite3

    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def is_driver_error(exc: BaseException) -> bool:
    """Whether an exception comes from the sqlite3 or psycopg driver."""
    import sqlite3
    import sys

    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, sqlite3.Error) or (
        psycopg is not None and isinstance(exc, psycopg.Error)
    )


class FastTransaction:
    """Statements inside :meth:`Store.fast_write`; SQL uses ``:name`` placeholders."""

    def __init__(self, store: Store, cursor: Any):
        self.store = store
        self.cursor = cursor

    def execute(self, sql: str, params: dict[str, Any]) -> None:
        """Run one statement."""
        self.cursor.execute(self._native(sql), params)

    def fetchone(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run a query and return its first row."""
        self.cursor.execute(self._native(sql), params)
        row: tuple[Any, ...] | None = self.cursor.fetchone()
        return row

    def fetchall(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run a query and return every row."""
        self.cursor.execute(self._native(sql), params)
        rows: list[tuple[Any, ...]] = self.cursor.fetchall()
        return rows

    def insert(self, table: Table, row: dict[str, Any], *, ignore: bool = False) -> None:
        """Insert one row; JSON columns are serialised as SQLAlchemy's JSON type does.

        With ``ignore``, a row whose key or unique columns exist already is left out
        (``ON CONFLICT DO NOTHING``, on SQLite and PostgreSQL alike).
        """
        sql, json_columns = _insert_sql(table, ignore)
        values = {
            k: (json.dumps(v) if k in json_columns and v is not None else v) for k, v in row.items()
        }
        self.cursor.execute(self._native(sql), values)

    def _native(self, sql: str) -> str:
        if self.store.is_sqlite:
            return sql  # sqlite3 takes :name as it is
        return _pyformat(sql)


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)


@functools.lru_cache(maxsize=64)
def _positional_insert_sql(table: Table, qmark: bool) -> str:
    columns = [c.name for c in table.columns if c.autoincrement is not True]
    marks = ", ".join(["?" if qmark else "%s"] * len(columns))
    quoted = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"


@functools.lru_cache(maxsize=64)
def _insert_sql(table: Table, ignore: bool = False) -> tuple[str, frozenset[str]]:
    from sqlalchemy import JSON

    columns = [c.name for c in table.columns if c.autoincrement is not True]
    quoted = ", ".join(f'"{c}"' for c in columns)
    sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({', '.join(':' + c for c in columns)})"
    if ignore:
        sql += " ON CONFLICT DO NOTHING"
    return sql, frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT in the connection's dialect (PostgreSQL's or SQLite's), which knows
    ``ON CONFLICT``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key is there; whether it was inserted (two
    writers racing: one wins, the other is told, nothing fails)."""
    stmt = dialect_insert(conn, table).values(values).on_conflict_do_nothing()
    # RETURNING says whether the row went in on both (rowcount said 1 on PostgreSQL either way).
    return conn.execute(stmt.returning(*table.primary_key.columns)).first() is not None


def take_turns(conn: Connection, keys: Sequence[str]) -> None:
    """Make writers of the same ``keys`` wait for each other until the transaction ends, so
    that each reads what the one before it committed: PostgreSQL's transaction-scoped advisory
    locks (in sorted order: no deadlock); SQLite has one writer at a time already."""
    if conn.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    numbers = sorted(
        {
            int.from_bytes(
                hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True
            )
            for key in keys
        }
    )
    if numbers:
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT unnest(CAST(:keys AS BIGINT[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": numbers},
        )


def upsert(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    keys: Sequence[str],
    *,
    add: Sequence[str] = (),
) -> None:
    """Insert a row, or update its non-key columns when one with the same key exists: those in
    ``add`` by adding the new value to the stored one, the others by replacing it."""
    stmt = dialect_insert(conn, table).values(values)
    update = {
        k: table.c[k] + stmt.excluded[k] if k in add else stmt.excluded[k]
        for k in values
        if k not in keys
    }
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update))
