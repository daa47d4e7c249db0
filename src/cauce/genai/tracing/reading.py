"""Reading stored traces: one with its spans, the newest of a name, a status, a session or
a user, page by page; sessions and users with their traces summed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Select, and_, or_, select

from cauce.errors import InvalidInput, NotFound
from cauce.genai.tracing.attributes import (
    EVALUATION_EVENT,
    EXPECTATION_EVENT,
    EXPECTATION_NAME,
    EXPECTATION_VALUE,
)
from cauce.genai.tracing.spans import flush
from cauce.operations import operation
from cauce.store import id_matches, only_match
from cauce.store.schema import (
    lineage_edges,
    prompt_versions,
    prompts,
    spans,
    trace_tags,
    traces,
)
from cauce.validation import check_int, check_limit
from cauce.workspace import Workspace, current


@dataclass(frozen=True)
class TraceSummary:
    """One trace: its root's name, time and status, its spans' tokens and cost, the session
    and user it belongs to, the scores on it (evaluations, feedback), by name, and its tags."""

    id: str
    name: str
    started_at: int
    duration_ms: float
    status: str
    span_count: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    session_id: str | None = None
    user_id: str | None = None
    scores: dict[str, float | str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    experiment_id: str | None = None
    """The experiment it is filed under (None: the workspace's default one)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class _Totals:
    """Traces summed: how many, how many failed, the first and the last, tokens and cost."""

    id: str
    traces: int
    errors: int
    first_at: int
    last_at: int
    input_tokens: int
    output_tokens: int
    cost: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class UserSummary(_Totals):
    """The traces of one user, summed, and how many sessions they are in."""

    sessions: int = 0


@dataclass(frozen=True)
class SessionSummary(_Totals):
    """The traces of one session, summed, and the users they were made for."""

    user_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SpanRecord:
    """A stored span."""

    span_id: str
    parent_id: str | None
    name: str
    kind: str
    operation: str | None
    started_ns: int
    duration_ms: float
    status: str
    status_message: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class Trace:
    """A trace and its spans, parents before children, siblings by start time."""

    summary: TraceSummary
    spans: list[SpanRecord] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    """The prompt versions it used (``prompts:/name/3``), by name and version."""
    run_id: str | None = None
    """The run it was made in."""

    def children(self, span_id: str | None) -> list[SpanRecord]:
        """The spans whose parent is ``span_id`` (None: the roots)."""
        return [s for s in self.spans if s.parent_id == span_id]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            **self.summary.to_dict(),
            "spans": [s.to_dict() for s in self.spans],
            "prompts": list(self.prompts),
            "run_id": self.run_id,
        }


def list_traces(
    *,
    name: str | None = None,
    status: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[TraceSummary]:
    """Recent traces, newest first (the spans this process still buffers written first):
    of a name, a status, a session, a user, a tag (``KEY`` or ``KEY=VALUE``), made in a run,
    filed under an experiment (its name or id), started at ``since_ms`` or later; ``before``
    a trace (its id, or a unique prefix), the ones older than it, so the last one listed names
    the next page."""
    ws = workspace or current()
    flush(ws)
    return query_traces(
        name=name,
        status=status,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        run_id=run_id,
        experiment=experiment,
        since_ms=since_ms,
        before=before,
        limit=limit,
        workspace=ws,
    )


@operation("GET /traces")
def query_traces(
    *,
    name: str | None = None,
    status: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[TraceSummary]:
    """Stored traces, newest first; ``before`` a trace, the ones older than it."""
    ws = workspace or current()
    check_limit(limit)
    conditions = trace_conditions(
        name=name,
        status=status,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        run_id=run_id,
        since_ms=since_ms,
    )
    query = (
        with_root()
        .where(*conditions)
        .order_by(traces.c.started_at.desc(), traces.c.id)
        .limit(limit)
    )
    with ws.store.read() as conn:
        if experiment is not None:
            query = query.where(filed_under(conn, ws, experiment))
        if before is not None:
            after = _require_trace(conn, before)
            query = query.where(
                traces.c.started_at <= after.started_at,  # a range the index answers
                or_(traces.c.started_at < after.started_at, traces.c.id > after.id),
            )
        return summaries(conn, list(conn.execute(query)))


def list_sessions(
    *,
    user_id: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[SessionSummary]:
    """Sessions, the one with the latest trace first (the spans this process still buffers
    written first); ``user_id``: only the sessions with a trace of that user; ``since_ms``:
    only the traces started then or later, summed; ``before`` a session, the ones after it
    in this order, so the last one listed names the next page."""
    ws = workspace or current()
    flush(ws)
    return query_sessions(
        user_id=user_id, since_ms=since_ms, before=before, limit=limit, workspace=ws
    )


@operation("GET /trace-sessions")
def query_sessions(
    *,
    user_id: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[SessionSummary]:
    """Stored sessions, the one with the latest trace first: each one's traces summed (those
    started at ``since_ms`` or later); ``before`` a session, the ones after it."""
    ws = workspace or current()
    check_limit(limit)
    window = trace_conditions(since_ms=since_ms)
    group = traces.c.session_id
    with ws.store.read() as conn:
        of_user = []
        if user_id is not None:
            mine = select(group).where(traces.c.user_id == user_id, *window)
            of_user = [group.in_(mine)]
        ids = _latest(conn, group, [*window, *of_user], before, limit, "session")
        found = _totals(conn, group, ids, window)
        users: dict[str, list[str]] = {}
        if ids:
            pairs = conn.execute(
                select(group, traces.c.user_id)
                .distinct()
                .where(group.in_(ids), traces.c.user_id.is_not(None), *window)
                .order_by(group, traces.c.user_id)
            )
            for session_id, user in pairs:
                users.setdefault(session_id, []).append(user)
    return [SessionSummary(**_summed(r), user_ids=users.get(r.id, [])) for r in found]


def list_users(
    *,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[UserSummary]:
    """Users, the one with the latest trace first (the spans this process still buffers
    written first): each one's traces, sessions, tokens and cost; ``since_ms``: only the
    traces started then or later, summed; ``before`` a user, the ones after it."""
    ws = workspace or current()
    flush(ws)
    return query_users(since_ms=since_ms, before=before, limit=limit, workspace=ws)


@operation("GET /trace-users")
def query_users(
    *,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[UserSummary]:
    """Stored users, the one with the latest trace first: each one's traces summed (those
    started at ``since_ms`` or later); ``before`` a user, the ones after it."""
    from sqlalchemy import distinct, func

    ws = workspace or current()
    check_limit(limit)
    window = trace_conditions(since_ms=since_ms)
    group = traces.c.user_id
    sessions = func.count(distinct(traces.c.session_id)).label("sessions")
    with ws.store.read() as conn:
        ids = _latest(conn, group, window, before, limit, "user")
        found = _totals(conn, group, ids, window, sessions)
    return [UserSummary(**_summed(r), sessions=r.sessions) for r in found]


def trace_conditions(
    *,
    name: str | None = None,
    status: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    run_id: str | None = None,
    since_ms: int | None = None,
) -> list[Any]:
    """The conditions on traces of a name, a status, a session, a user, a tag (``KEY`` or
    ``KEY=VALUE``) and a run they were made in, started at ``since_ms`` or later (none given:
    every trace)."""
    found = [
        column == value
        for column, value in (
            (traces.c.name, name),
            (traces.c.status, status),
            (traces.c.session_id, session_id),
            (traces.c.user_id, user_id),
        )
        if value is not None
    ]
    if tag is not None:
        key, has_value, value = tag.partition("=")
        if not key:
            raise InvalidInput(f"tag is KEY or KEY=VALUE, not {tag!r}", details={"field": "tag"})
        tagged = select(trace_tags.c.trace_id).where(trace_tags.c.key == key)
        if has_value:
            tagged = tagged.where(trace_tags.c.value == value)
        found.append(traces.c.id.in_(tagged))
    if run_id is not None:
        e = lineage_edges.c
        made = select(e.dst_id).where(
            e.src_kind == "run", e.src_id == run_id, e.dst_kind == "trace"
        )
        found.append(traces.c.id.in_(made))
    if since_ms is not None:
        check_int(since_ms, "since_ms")
        found.append(traces.c.started_at >= since_ms)
    return found


def filed_under(conn: Any, ws: Workspace, experiment: str) -> Any:
    """The condition on traces filed under an experiment (its name or id): those filed under
    none are the workspace's default experiment's."""
    from cauce.tracking.experiments import require_experiment

    found = require_experiment(conn, experiment)
    column = traces.c.experiment_id
    if found.name == ws.settings.experiment:
        return or_(column == found.id, column.is_(None))
    return column == found.id


def _latest(
    conn: Any, group: Any, where: list[Any], before: str | None, limit: int, what: str
) -> list[str]:
    """The ``limit`` groups (sessions, users) of the traces ``where`` holds, the one with the
    latest trace first, then by id; after the group ``before`` when one is named (a keyset
    page). Read from the (group, started_at) index alone: the sums come after, for these."""
    from sqlalchemy import func

    last = func.max(traces.c.started_at)
    query = (
        select(group)
        .where(group.is_not(None), *where)
        .group_by(group)
        .order_by(last.desc(), group)
        .limit(limit)
    )
    if before is not None:
        mark = conn.execute(select(func.max(traces.c.started_at)).where(group == before)).scalar()
        if mark is None:
            raise NotFound(f"no {what} {before}", hint=f"cauce traces {what}s lists them")
        query = query.having(or_(last < mark, and_(last == mark, group > before)))
    return list(conn.execute(query).scalars())


def _totals(conn: Any, group: Any, ids: list[str], window: list[Any], *more: Any) -> list[Any]:
    """The traces in ``window`` of the groups ``ids`` summed, in the order of ``ids``."""
    from sqlalchemy import case, func

    if not ids:
        return []
    query = (
        select(
            group.label("id"),
            func.count().label("traces"),
            func.sum(case((traces.c.status == "error", 1), else_=0)).label("errors"),
            func.min(traces.c.started_at).label("first_at"),
            func.max(traces.c.started_at).label("last_at"),
            func.sum(traces.c.input_tokens).label("input_tokens"),
            func.sum(traces.c.output_tokens).label("output_tokens"),
            func.sum(traces.c.cost).label("cost"),
            *more,
        )
        .where(group.in_(ids), *window)
        .group_by(group)
    )
    by_id = {row.id: row for row in conn.execute(query)}
    return [by_id[i] for i in ids]


def _summed(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "traces": row.traces,
        "errors": int(row.errors),
        "first_at": row.first_at,
        "last_at": row.last_at,
        "input_tokens": int(row.input_tokens),
        "output_tokens": int(row.output_tokens),
        "cost": row.cost,
    }


@operation("GET /trace-names")
def trace_names(*, workspace: Workspace | None = None) -> list[str]:
    """The names the stored traces go by (their root spans'), in order: what
    :func:`query_traces` can be asked for by ``name``."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return list(
            conn.execute(select(traces.c.name).distinct().order_by(traces.c.name)).scalars()
        )


def get_trace(trace_id: str, *, workspace: Workspace | None = None) -> Trace:
    """A trace with its spans, by its id or the start of it (4 or more hex characters) when that
    names one trace."""
    ws = workspace or current()
    flush(ws)
    return read_trace(trace_id, workspace=ws)


@operation("GET /traces/{trace_id}")
def read_trace(
    trace_id: str, *, with_spans: bool = True, workspace: Workspace | None = None
) -> Trace:
    """A stored trace with its spans (``with_spans=False``: none, its summary alone), parents
    before children; the start of its id (4 or more hex characters) will do when it names one
    trace."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _require_trace(conn, trace_id)
        found: list[Any] = []
        if with_spans:
            query = select(spans).where(spans.c.trace_id == row.id)
            found = list(conn.execute(query.order_by(spans.c.started_ns)))
        used = _prompts_used(conn, row.id)
        e = lineage_edges.c
        made_in = conn.scalar(
            select(e.src_id)
            .where(e.dst_kind == "trace", e.dst_id == row.id, e.src_kind == "run")
            .order_by(e.src_id)
            .limit(1)
        )
        [summary] = summaries(conn, [row])
    return Trace(summary, _tree_order([_span_record(r) for r in found]), used, made_in)


def read_summary(conn: Any, trace_id: str) -> TraceSummary:
    """A stored trace's summary (its id, or the start of it), in the caller's transaction."""
    [summary] = summaries(conn, [_require_trace(conn, trace_id)])
    return summary


def summaries(conn: Any, rows: list[Any]) -> list[TraceSummary]:
    """The summaries of traces read with :func:`with_root`, with their tags."""
    t = trace_tags.c
    ids = [row.id for row in rows]
    tags: dict[str, dict[str, str]] = {}
    if ids:
        found = conn.execute(
            select(t.trace_id, t.key, t.value).where(t.trace_id.in_(ids)).order_by(t.key)
        )
        for tag in found:
            tags.setdefault(tag.trace_id, {})[tag.key] = tag.value
    return [_trace_summary(row, tags.get(row.id, {})) for row in rows]


def _prompts_used(conn: Any, trace_id: str) -> list[str]:
    e, v, p = lineage_edges.c, prompt_versions.c, prompts.c
    rows = conn.execute(
        select(p.name, v.version)
        .join(prompt_versions, v.id == e.src_id)
        .join(prompts, p.id == v.prompt_id)
        .where(e.dst_kind == "trace", e.dst_id == trace_id, e.src_kind == "prompt_version")
        .order_by(p.name, v.version)
    )
    return [f"prompts:/{r.name}/{r.version}" for r in rows]


def _require_trace(conn: Any, trace_id: str) -> Any:
    text = trace_id.lower()
    if not 4 <= len(text) <= 32 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(
            f"a trace is named by its id (4 to 32 hex characters), not {trace_id!r}",
            details={"field": "trace_id"},
        )
    rows = conn.execute(with_root().where(id_matches(traces.c.id, text)).limit(2)).all()
    return only_match(
        rows, trace_id, "trace", "trace_id", hint="cauce traces list shows the recent ones"
    )


root_span = spans.alias("root")


def with_root(*columns: Any) -> Select[Any]:
    """The traces with their root span's times in ns (the summary keeps whole ms: a trace
    faster than a millisecond would read 0), its events and its ``columns``; None for a
    summary sent without its spans."""
    return select(
        traces, root_span.c.started_ns, root_span.c.ended_ns, root_span.c.events, *columns
    ).select_from(
        traces.outerjoin(
            root_span,
            and_(root_span.c.trace_id == traces.c.id, root_span.c.span_id == traces.c.root_span_id),
        )
    )


def trace_duration_ms(row: Any) -> float:
    """A trace's duration from its root span's ns, or its summary's ms without one."""
    if row.started_ns is None:
        return float(row.ended_at - row.started_at)
    return float((row.ended_ns - row.started_ns) / 1e6)


def _trace_summary(row: Any, tags: dict[str, str]) -> TraceSummary:
    return TraceSummary(
        id=row.id,
        name=row.name,
        started_at=row.started_at,
        duration_ms=trace_duration_ms(row),
        status=row.status,
        span_count=row.span_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
        session_id=row.session_id,
        user_id=row.user_id,
        scores=_scores(row.events or []),
        tags=tags,
        experiment_id=row.experiment_id,
    )


def _scores(events: list[dict[str, Any]]) -> dict[str, float | str]:
    """The evaluation results on a root span, the latest of each name: its score, or its
    label when it has no score."""
    found: dict[str, float | str] = {}
    for name, a in latest_results(events).items():
        value = a.get("gen_ai.evaluation.score.value", a.get("gen_ai.evaluation.score.label"))
        if value is not None:
            found[name] = value
    return found


def latest_results(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The attributes of the latest evaluation result of each name among a span's events (a
    corrected feedback replaces the one before)."""
    return {
        event["attributes"]["gen_ai.evaluation.name"]: event["attributes"]
        for event in events
        if event["name"] == EVALUATION_EVENT
    }


def latest_expectations(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest expectation of each name among a span's events, its value decoded."""
    return {
        event["attributes"][EXPECTATION_NAME]: json.loads(event["attributes"][EXPECTATION_VALUE])
        for event in events
        if event["name"] == EXPECTATION_EVENT
    }


def _span_record(row: Any) -> SpanRecord:
    return SpanRecord(
        span_id=row.span_id,
        parent_id=row.parent_id,
        name=row.name,
        kind=row.kind,
        operation=row.operation,
        started_ns=row.started_ns,
        duration_ms=(row.ended_ns - row.started_ns) / 1e6,
        status=row.status,
        status_message=row.status_message,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
        attributes=dict(row.attributes),
        events=list(row.events),
    )


def _tree_order(found: list[SpanRecord]) -> list[SpanRecord]:
    """Depth first from the roots, siblings by start time (spans arrive by start time); a span
    whose parent is not in the trace counts as a root."""
    ids = {s.span_id for s in found}
    children: dict[str | None, list[SpanRecord]] = {}
    for record in found:
        parent = record.parent_id if record.parent_id in ids else None
        children.setdefault(parent, []).append(record)
    ordered: list[SpanRecord] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        record = stack.pop()
        ordered.append(record)
        stack.extend(reversed(children.get(record.span_id, [])))
    return ordered
