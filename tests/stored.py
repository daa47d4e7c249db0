"""What a workspace's store holds, to compare before and after an operation.

Importable from every test module: pytest puts this folder (the root conftest's) on sys.path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select

from cauce.store.schema import metadata
from cauce.workspace import Workspace


def row_counts(ws: Workspace, *tables: str) -> dict[str, int]:
    """The number of rows in each table named, or in every table of the store when none is."""
    names = tables or tuple(metadata.tables)
    with ws.store.read() as conn:
        return {
            name: int(
                conn.execute(select(func.count()).select_from(metadata.tables[name])).scalar()
            )
            for name in names
        }


def row_count(ws: Workspace, table: str) -> int:
    """The number of rows in one table."""
    return row_counts(ws, table)[table]


def snapshot(ws: Workspace) -> dict[str, list[str]]:
    """Every row of every table, audit log included, comparable: a changed, added or removed
    row shows, by column name."""
    with ws.store.read() as conn:
        return {
            table.name: sorted(
                json.dumps(dict(row._mapping), sort_keys=True, default=str)
                for row in conn.execute(select(table))
            )
            for table in metadata.sorted_tables
        }


@contextmanager
def refusing_inserts(ws: Workspace, table: str, when: str | None = None) -> Iterator[None]:
    """While inside, the database refuses every insert into ``table`` (as a constraint would),
    or only those whose new row meets ``when`` (SQL over ``NEW``, e.g. ``NEW.action = 'x'``)."""
    trigger = f"refuse_{table}"
    with ws.store.write() as conn:
        if ws.store.is_sqlite:
            condition = f" WHEN {when}" if when else ""
            conn.exec_driver_sql(
                f"CREATE TRIGGER {trigger} BEFORE INSERT ON {table}{condition} "
                "BEGIN SELECT RAISE(ABORT, 'insert refused by the test'); END"
            )
        else:
            condition = f" WHEN ({when})" if when else ""
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'insert refused by the test'; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {trigger} BEFORE INSERT ON {table} "
                f"FOR EACH ROW{condition} EXECUTE FUNCTION refuse_insert()"
            )
    try:
        yield
    finally:
        with ws.store.write() as conn:
            on = "" if ws.store.is_sqlite else f" ON {table}"
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}{on}")
