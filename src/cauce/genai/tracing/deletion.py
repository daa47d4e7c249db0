"""Deleting traces for good: a retention window (``before_ms``), a user's or a session's
traces (a request to erase them), or traces named by id. Their spans, tags, feedback and
lineage edges go with them, in one transaction; the retrievals they made keep their counts
but no longer name them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select

from cauce.errors import InvalidInput
from cauce.genai.tracing.attributes import check_hex
from cauce.genai.tracing.reading import filed_under, trace_conditions
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store.schema import lineage_edges, retrievals, spans, trace_tags, traces
from cauce.validation import check_int, check_limit
from cauce.workspace import Workspace, current

MAX_IDS = 1000
_CHUNK = 500


@operation("POST /traces/delete", idempotent=True)
def delete_traces(
    trace_ids: Sequence[str] | None = None,
    *,
    before_ms: int | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    experiment: str | None = None,
    max_traces: int | None = None,
    workspace: Workspace | None = None,
) -> int:
    """Delete traces and everything recorded on them: those named (``trace_ids``, at most
    ``MAX_IDS``), those started before ``before_ms``, a session's, a user's, or the ones that
    match all of these given; ``experiment`` (its name or id) narrows them to the traces filed
    under it, ``max_traces`` to that many, oldest first. One of the first four is needed: no
    call deletes every trace by accident. How many were deleted; audited."""
    ids = list(trace_ids or [])
    if not (ids or before_ms is not None or session_id is not None or user_id is not None):
        raise InvalidInput(
            "delete_traces needs trace_ids, before_ms, session_id or user_id",
            details={"field": "trace_ids"},
        )
    if len(ids) > MAX_IDS:
        raise InvalidInput(
            f"trace_ids: at most {MAX_IDS} a call, not {len(ids)}", details={"field": "trace_ids"}
        )
    for index, trace_id in enumerate(ids):
        check_hex(str(trace_id), 32, f"trace_ids.{index}")
    if before_ms is not None:
        check_int(before_ms, "before_ms")
    if max_traces is not None:
        check_limit(max_traces, "max_traces")
    ws = workspace or current()
    conditions = trace_conditions(session_id=session_id, user_id=user_id)
    if ids:
        conditions.append(traces.c.id.in_(ids))
    if before_ms is not None:
        conditions.append(traces.c.started_at < before_ms)
    with ws.store.write() as conn:
        if experiment is not None:
            conditions.append(filed_under(conn, ws, experiment))
        query = select(traces.c.id).where(*conditions).order_by(traces.c.started_at, traces.c.id)
        if max_traces is not None:
            query = query.limit(max_traces)
        found = list(conn.scalars(query))
        deleted = sum(_delete(conn, found[i : i + _CHUNK]) for i in range(0, len(found), _CHUNK))
        if deleted:
            given = {
                "trace_ids": ids or None,
                "before_ms": before_ms,
                "session_id": session_id,
                "user_id": user_id,
                "experiment": experiment,
                "max_traces": max_traces,
            }
            audit.record(
                conn,
                ws.user,
                "trace.delete",
                "trace",
                found[0] if len(found) == 1 else "*",
                before={k: v for k, v in given.items() if v is not None},
                after={"deleted": deleted},
            )
    return deleted


def _delete(conn: Any, ids: list[str]) -> int:
    """Delete those traces and what is recorded on them; how many were still there (another
    call deleting the same ones at once counts each once)."""
    e = lineage_edges.c
    conn.execute(spans.delete().where(spans.c.trace_id.in_(ids)))
    conn.execute(trace_tags.delete().where(trace_tags.c.trace_id.in_(ids)))
    conn.execute(
        lineage_edges.delete().where(
            or_(
                and_(e.dst_kind == "trace", e.dst_id.in_(ids)),
                and_(e.src_kind == "trace", e.src_id.in_(ids)),
            )
        )
    )
    conn.execute(
        retrievals.update()
        .where(retrievals.c.trace_id.in_(ids))
        .values(trace_id=None, span_id=None)
    )
    return int(conn.execute(traces.delete().where(traces.c.id.in_(ids))).rowcount)
