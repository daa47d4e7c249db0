"""A trace's tags (its environment, a reviewer's verdict): set on a stored trace, removed, and
read with the traces. Spans and MLflow's trace info tag their traces as they are stored
(:mod:`.records`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cauce.genai.tracing.reading import TraceSummary, read_summary
from cauce.lineage.tags import delete_tag, set_tags
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
        set_tags(conn, ws.user, trace_tags, ("trace_id", found.id), "trace", checked)
        return read_summary(conn, found.id)


@operation("DELETE /traces/{trace_id}/tags")
def delete_trace_tag(
    trace_id: str, key: str, *, workspace: Workspace | None = None
) -> TraceSummary:
    """Remove a tag from a trace (its id, or the start of it); audited."""
    ws = workspace or current()
    with ws.store.write() as conn:
        found = read_summary(conn, trace_id)
        owner = ("trace_id", found.id)
        delete_tag(conn, ws.user, trace_tags, owner, "trace", key, f"trace {found.id}")
        return read_summary(conn, found.id)
