"""A trace's tags (its environment, a reviewer's verdict): set on a stored trace, removed, and
read with the traces. Spans and MLflow's trace info tag their traces as they are stored
(:mod:`.records`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from cauce.errors import NotFound
from cauce.genai.tracing.reading import TraceSummary, read_summary
from cauce.genai.tracing.records import write_tags
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store.schema import trace_tags
from cauce.validation import check_tags
from cauce.workspace import Workspace, current


@operation("POST /traces/{trace_id}/tags")
def set_trace_tags(
    trace_id: str, values: Mapping[str, Any], *, workspace: Workspace | None = None
) -> TraceSummary:
    """Set tags on a trace (its id, or the start of it), replacing earlier values; audited."""
    checked = check_tags(values)
    ws = workspace or current()
    with ws.store.write() as conn:
        found = read_summary(conn, trace_id)
        t = trace_tags.c
        before = {
            r.key: r.value
            for r in conn.execute(
                select(t.key, t.value).where(t.trace_id == found.id, t.key.in_(list(checked)))
            )
        }
        write_tags(conn, {found.id: checked})
        audit.record(conn, ws.user, "trace.tag", "trace", found.id, before=before, after=checked)
        return read_summary(conn, found.id)


@operation("DELETE /traces/{trace_id}/tags")
def delete_trace_tag(
    trace_id: str, key: str, *, workspace: Workspace | None = None
) -> TraceSummary:
    """Remove a tag from a trace (its id, or the start of it); audited."""
    ws = workspace or current()
    t = trace_tags.c
    with ws.store.write() as conn:
        found = read_summary(conn, trace_id)
        where = (t.trace_id == found.id) & (t.key == key)
        old = conn.execute(select(t.value).where(where)).scalar()
        if old is None:
            raise NotFound(f"trace {found.id} has no tag {key!r}")
        conn.execute(trace_tags.delete().where(where))
        audit.record(conn, ws.user, "trace.untag", "trace", found.id, before={key: old}, after=None)
        return read_summary(conn, found.id)
