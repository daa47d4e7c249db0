"""Lineage, audit and traces: the lineage graph around any entity (drawn in layers, upstream
to the left, each node a link that centres the graph on it), the audit log filtered, and a
trace as a tree of spans on a time line with their tokens, latency and cost; traces paged
and filtered, by session and user too; the sessions and users they make, and a session as the
conversation it was."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import Response

from cauce.errors import InvalidInput, NotFound
from cauce.server.ui.graphs import drawn
from cauce.server.ui.pages import Context, View, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

    from cauce.genai.tracing import SpanRecord, Trace
    from cauce.lineage.graph import Graph

AUDIT_LIMIT = 200
TRACES_SHOWN = 100
SESSION_TURNS = 500
# The traces page's time ranges: how far back each one reaches, in ms.
SINCE = {"1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000, "30d": 2_592_000_000}
SCORES_FILTERS = ("name", "session", "user", "tag", "since")  # the traces filters scores take


def add_routes(app: FastAPI) -> None:
    """The lineage, audit and trace pages."""
    app.add_api_route(
        "/ui/lineage/{kind}/{entity_id}", page("viewer", lineage), include_in_schema=False
    )
    app.add_api_route("/ui/audit", page("viewer", audit), include_in_schema=False)
    app.add_api_route("/ui/traces", page("viewer", traces), include_in_schema=False)
    app.add_api_route("/ui/traces/{trace_id}", page("viewer", trace), include_in_schema=False)
    app.add_api_route("/ui/sessions", page("viewer", sessions), include_in_schema=False)
    app.add_api_route(
        "/ui/sessions/{session_id:path}", page("viewer", session), include_in_schema=False
    )
    app.add_api_route("/ui/users", page("viewer", users), include_in_schema=False)
    app.add_api_route("/ui/scores", page("viewer", scores), include_in_schema=False)


def lineage(request: Request) -> View:
    """The graph of everything upstream and downstream of an entity."""
    kind = request.path_params["kind"]
    entity_id = request.path_params["entity_id"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.lineage.graph import walk

        graph = walk(ws, kind, entity_id, "both", 8)
        return render("lineage.html", ctx=ctx, graph=graph, **layout(graph), section="lineage")

    return view


def layout(graph: Graph) -> dict[str, Any]:
    """The graph drawn in columns by distance from the root, upstream to the left."""
    depth = {(graph.root.kind, graph.root.id): 0}
    changed = True
    while changed:  # edges point downstream: a source is one column left of its target
        changed = False
        for edge in graph.edges:
            src, dst = (edge.src.kind, edge.src.id), (edge.dst.kind, edge.dst.id)
            if dst in depth and src not in depth:
                depth[src] = depth[dst] - 1
                changed = True
            if src in depth and dst not in depth:
                depth[dst] = depth[src] + 1
                changed = True
    nodes = {(n.kind, n.id): n for n in graph.nodes}
    for key in nodes:
        depth.setdefault(key, 0)
    edges = [((e.src.kind, e.src.id), (e.dst.kind, e.dst.id), e.relation) for e in graph.edges]
    found = drawn(depth, edges, lambda key: (key[0], nodes[key].label if key in nodes else ""))
    for placed in found["nodes"]:
        placed["node"] = nodes.get(placed["key"]) or graph.root
        placed["root"] = placed["key"] == (graph.root.kind, graph.root.id)
    return found


def audit(request: Request) -> View:
    """The audit log, newest first, filtered by entity kind, action (``*`` ends a prefix) and
    actor."""
    query = request.query_params
    filters = {k: query.get(k) or None for k in ("entity_kind", "entity_id", "action", "actor")}

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.lineage.audit import events

        found = events(ws, **filters, limit=AUDIT_LIMIT)
        return render("audit.html", ctx=ctx, events=found, filters=filters, limit=AUDIT_LIMIT,
                      section="audit")  # fmt: skip

    return view


def traces(request: Request) -> View:
    """The newest traces, of one name (a flow, a call), status, session, user, tag and run
    when asked; ``before`` a trace, the page of those older than it."""
    filters = {
        key: request.query_params.get(key) or None
        for key in ("name", "status", "session", "user", "tag", "run", "since", "before")
    }

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.tracing import list_traces, trace_names

        if filters["status"] not in (None, "ok", "error"):
            raise InvalidInput(
                f"status is ok or error, not {filters['status']!r}", details={"field": "status"}
            )
        found = list_traces(
            name=filters["name"],
            status=filters["status"],
            session_id=filters["session"],
            user_id=filters["user"],
            tag=filters["tag"],
            run_id=filters["run"],
            since_ms=_since_ms(filters["since"]),
            before=filters["before"],
            limit=TRACES_SHOWN,
        )
        newest, older = _pages(filters, found)
        scored_by = {k: v for k, v in filters.items() if v is not None and k in SCORES_FILTERS}
        return render("traces.html", ctx=ctx, traces=found, names=trace_names(), since=SINCE,
                      filters=filters, newest=newest, older=older,
                      scores_of="?" + urlencode(scored_by),
                      grouped=any(t.session_id or t.user_id for t in found),
                      scored=any(t.scores for t in found),
                      tagged=any(t.tags for t in found),
                      section="traces")  # fmt: skip

    return view


def sessions(request: Request) -> View:
    """Sessions, the latest first: each one's traces, users, tokens and cost; of one user,
    over the traces of the last hour, day, week or month when asked; ``before`` a session,
    the page after it."""
    filters = {key: request.query_params.get(key) or None for key in ("user", "since", "before")}

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.tracing import list_sessions

        found = list_sessions(
            user_id=filters["user"],
            since_ms=_since_ms(filters["since"]),
            before=filters["before"],
            limit=TRACES_SHOWN,
        )
        newest, older = _pages(filters, found)
        return render("sessions.html", ctx=ctx, sessions=found, filters=filters, since=SINCE,
                      newest=newest, older=older, section="traces")  # fmt: skip

    return view


def session(request: Request) -> View:
    """A session as the conversation it was: each trace's inputs, outputs and scores, oldest
    first, with the session's totals."""
    session_id = request.path_params["session_id"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.tracing import trace_rows

        rows = trace_rows(session_id=session_id, limit=SESSION_TURNS)
        if not rows:
            raise NotFound(f"no session {session_id}", hint="cauce traces sessions lists them")
        turns = [
            {
                "row": row,
                "inputs": _prefixed(row, "inputs."),
                "outputs": _prefixed(row, "outputs."),
                "scores": _scores(row),
            }
            for row in rows
        ]
        costs = [r["cost"] for r in rows if r["cost"] is not None]
        totals = {
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
            "cost": sum(costs) if costs else None,
            "errors": sum(r["status"] == "error" for r in rows),
            "users": sorted({r["user_id"] for r in rows if r.get("user_id")}),
        }
        return render("session.html", ctx=ctx, session_id=session_id, turns=turns, totals=totals,
                      shown=SESSION_TURNS, section="traces")  # fmt: skip

    return view


def _prefixed(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)}


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    """A row's evaluation results as the traces list shows them: the score, else the label."""
    found = _prefixed(row, "eval.")
    labels = {k.removesuffix(".label"): v for k, v in found.items() if k.endswith(".label")}
    scores = {k: v for k, v in found.items() if not k.endswith(".label")}
    return {name: scores.get(name, labels.get(name)) for name in sorted({*scores, *labels})}


def users(request: Request) -> View:
    """Users, the latest first: each one's sessions, traces, tokens and cost; over the traces
    of the last hour, day, week or month when asked; ``before`` a user, the page after it."""
    filters = {key: request.query_params.get(key) or None for key in ("since", "before")}

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.tracing import list_users

        found = list_users(
            since_ms=_since_ms(filters["since"]), before=filters["before"], limit=TRACES_SHOWN
        )
        newest, older = _pages(filters, found)
        return render("users.html", ctx=ctx, users=found, filters=filters, since=SINCE,
                      newest=newest, older=older, section="traces")  # fmt: skip

    return view


def scores(request: Request) -> View:
    """What evaluations and feedback said of the traces, by name: of a trace name, a session,
    a user, the last hour, day, week or month."""
    filters = {key: request.query_params.get(key) or None for key in SCORES_FILTERS}

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.tracing import list_scores, trace_names

        found = list_scores(
            name=filters["name"],
            session_id=filters["session"],
            user_id=filters["user"],
            tag=filters["tag"],
            since_ms=_since_ms(filters["since"]),
        )
        of_traces = "?" + urlencode({k: v for k, v in filters.items() if v is not None})
        return render("scores.html", ctx=ctx, scores=found, filters=filters, since=SINCE,
                      names=trace_names(), of_traces=of_traces, section="traces")  # fmt: skip

    return view


def _since_ms(since: str | None) -> int | None:
    """The UI's ``since`` (one of SINCE) as the time that long ago, in ms."""
    if since is None:
        return None
    if since not in SINCE:
        raise InvalidInput(
            f"since is one of {', '.join(SINCE)}, not {since!r}", details={"field": "since"}
        )
    return int(time.time() * 1000) - SINCE[since]


def _pages(filters: dict[str, str | None], found: list[Any]) -> tuple[str, str | None]:
    """The query strings of the first page, and of the next when this one is full."""
    kept = {k: v for k, v in filters.items() if v is not None and k != "before"}
    older = (
        "?" + urlencode({**kept, "before": found[-1].id}) if len(found) == TRACES_SHOWN else None
    )
    return "?" + urlencode(kept), older


def trace(request: Request) -> View:
    """A trace as its tree of spans, each on the trace's time line."""
    trace_id = request.path_params["trace_id"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.tracing import read_trace

        found = read_trace(trace_id)  # the id, or its start as everywhere (4 or more)
        return render("trace.html", ctx=ctx, trace=found, rows=span_rows(found), section="traces")

    return view


def span_rows(found: Trace) -> list[dict[str, Any]]:
    """The spans depth first, each with its depth and its place on the time line (percent)."""
    if not found.spans:
        return []
    start = min(s.started_ns for s in found.spans)
    end = max(s.started_ns + s.duration_ms * 1e6 for s in found.spans)
    total = max(end - start, 1.0)
    rows: list[dict[str, Any]] = []

    shown: set[str] = set()

    def visit(span: SpanRecord, depth: int) -> None:
        shown.add(span.span_id)
        offset = (span.started_ns - start) / total * 100
        rows.append({"span": span, "depth": depth, "offset": offset,
                     "width": max(span.duration_ms * 1e6 / total * 100, 0.5)})  # fmt: skip
        for child in found.children(span.span_id):
            if child.span_id not in shown:
                visit(child, depth + 1)

    held = {s.span_id for s in found.spans}
    for span in found.spans:  # the root, and a span whose parent is not stored, at the top
        if span.parent_id is None or span.parent_id not in held:
            visit(span, 0)
    for span in found.spans:  # spans that are each other's parents (a tracer's fault)
        if span.span_id not in shown:
            visit(span, 0)
    return rows
