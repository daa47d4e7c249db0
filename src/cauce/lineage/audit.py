"""The audit log: who changed what, when, with the state before and after.

Domain modules call :func:`record` with the connection of the transaction that makes the change,
so the event and the change commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.operations import operation
from cauce.store import FastTransaction, id_matches, now_ms
from cauce.store.schema import audit_events
from cauce.validation import check_limit

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cauce.workspace import Workspace


@dataclass(frozen=True)
class AuditEvent:
    """One recorded change."""

    id: int
    at: int
    actor: str
    action: str
    entity_kind: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


def record(
    conn: Connection,
    actor: str,
    action: str,
    entity_kind: str,
    entity_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write an audit event inside the caller's transaction."""
    conn.execute(
        audit_events.insert().values(
            at=now_ms(),
            actor=actor,
            action=action,
            entity_kind=entity_kind,
            entity_id=entity_id,
            before=before,
            after=after,
        )
    )


def record_fast(
    tx: FastTransaction,
    actor: str,
    action: str,
    entity_kind: str,
    entity_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write an audit event inside a hot-path transaction (:meth:`Store.fast_write`)."""
    tx.insert(
        audit_events,
        {
            "at": now_ms(),
            "actor": actor,
            "action": action,
            "entity_kind": entity_kind,
            "entity_id": entity_id,
            "before": before,
            "after": after,
        },
    )


@operation("GET /audit")
def events(
    workspace: Workspace,
    *,
    entity_kind: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The newest audit events first, optionally filtered; ``entity_id`` may be the start of
    ids (4 or more characters), as the CLI and the UI print them."""
    from sqlalchemy import select

    query = select(audit_events).order_by(audit_events.c.id.desc()).limit(check_limit(limit))
    if entity_kind:
        query = query.where(audit_events.c.entity_kind == entity_kind)
    if entity_id:
        query = query.where(id_matches(audit_events.c.entity_id, entity_id))
    if action:
        # Only ``*`` is a wildcard: the ``_`` in ``model_version.create`` is a plain character.
        literal = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(audit_events.c.action.like(literal.replace("*", "%"), escape="\\"))
    if actor:
        query = query.where(audit_events.c.actor == actor)
    with workspace.store.read() as conn:
        return [AuditEvent(**row._mapping) for row in conn.execute(query)]
