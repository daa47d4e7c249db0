"""Key-value tags on an entity (an experiment, a model and its versions, a prompt and its
versions, a trace), kept as ``(owner, key, value)`` rows: each change is audited as
``KIND.tag`` or ``KIND.untag``, with the values it replaced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from cauce.errors import NotFound
from cauce.lineage import audit
from cauce.store import upsert


def set_tags(
    conn: Connection,
    actor: str,
    table: Any,
    owner: tuple[str, str],
    kind: str,
    values: Mapping[str, str],
) -> None:
    """Set checked tags (``cauce.validation.check_tags``) on the entity ``owner``, a column
    and its value, replacing earlier values, in the caller's transaction; none: nothing done,
    nothing audited."""
    if not values:
        return
    column, owner_id = owner
    t = table.c
    query = select(t.key, t.value).where(t[column] == owner_id, t.key.in_(list(values)))
    before = {row.key: row.value for row in conn.execute(query)}
    for key, value in values.items():
        upsert(conn, table, {column: owner_id, "key": key, "value": value}, (column, "key"))
    audit.record(
        conn, actor, f"{kind}.tag", kind, owner_id, before=before or None, after=dict(values)
    )


def delete_tag(
    conn: Connection,
    actor: str,
    table: Any,
    owner: tuple[str, str],
    kind: str,
    key: str,
    what: str,
) -> None:
    """Remove the tag ``key`` from the entity ``owner``; NotFound names ``what`` lacks it."""
    column, owner_id = owner
    where = (table.c[column] == owner_id) & (table.c.key == key)
    old = conn.execute(select(table.c.value).where(where)).scalar()
    if old is None:
        raise NotFound(f"{what} has no tag {key!r}")
    conn.execute(table.delete().where(where))
    audit.record(conn, actor, f"{kind}.untag", kind, owner_id, before={key: old}, after=None)


def read_tags(conn: Connection, table: Any, owner: tuple[str, str]) -> dict[str, str]:
    """The entity's tags, by key."""
    column, owner_id = owner
    t = table.c
    rows = conn.execute(select(t.key, t.value).where(t[column] == owner_id).order_by(t.key))
    return {row.key: row.value for row in rows}
