"""Finished spans and the summaries of their traces, checked and stored: what an exporter
(this process's, or a client's through the server) hands to the store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from cauce.errors import InvalidInput, NotFound
from cauce.genai.tracing.attributes import (
    MLFLOW_LINKED_PROMPTS,
    PROMPT_VERSION,
    RUN,
    SESSION,
    TAG_LISTS,
    TRACE_TAG,
    USER,
    check_hex,
    check_id,
    id_text,
)
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.store import dialect_insert, schema, take_turns
from cauce.tracking.experiments import require_experiment
from cauce.validation import check_tags
from cauce.workspace import Workspace, current

_PROMPT_REF = re.compile(r"^prompts:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class FinishedSpan:
    """A span that has ended, as an exporter hands it to the store."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    operation: str | None
    started_ns: int
    ended_ns: int
    status: str
    status_message: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class FinishedTrace:
    """A trace whose root span has ended: its root and its spans' sums."""

    id: str
    name: str
    root_span_id: str
    started_at: int
    ended_at: int
    status: str
    span_count: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    session_id: str | None = None
    user_id: str | None = None


@operation("POST /traces/spans", idempotent=True)
def record_spans(
    spans: list[FinishedSpan],
    traces: list[FinishedTrace] | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Store a batch of finished spans, and the summaries of the traces their roots end, in
    one transaction; a span or trace already stored is kept as it was (so a batch sent again
    changes nothing)."""
    ws = workspace or current()
    summaries = traces or []
    for index, one in enumerate(spans):
        _check_span(one, f"spans.{index}")
    for index, summary in enumerate(summaries):
        _check_trace(summary, f"traces.{index}")
    with ws.store.write() as conn:
        if spans:
            conn.execute(
                dialect_insert(conn, schema.spans).on_conflict_do_nothing(),
                [_row(s) for s in spans],
            )
        if summaries:
            conn.execute(
                dialect_insert(conn, schema.traces).on_conflict_do_nothing(),
                [_row(t) for t in summaries],
            )
        _record_named(conn, spans)


def record_received_spans(spans: list[FinishedSpan], *, workspace: Workspace | None = None) -> None:
    """Store spans another tracer sent (over OTLP) in one transaction, and the summary of each
    trace they belong to, summed from all its stored spans: a trace's spans may come in any
    order over several requests, its root first or last (until it comes, the earliest span
    whose parent is not stored names the trace). A span already stored is kept as it was, so a
    batch sent again changes nothing."""
    ws = workspace or current()
    for index, one in enumerate(spans):
        _check_span(one, f"spans.{index}")
    if not spans:
        return
    trace_ids = sorted({one.trace_id for one in spans})
    with ws.store.write() as conn:
        # Requests bringing spans of one trace at once (services of one distributed trace)
        # sum in turn, each seeing the spans the one before it stored.
        take_turns(conn, [f"trace {trace_id}" for trace_id in trace_ids])
        conn.execute(
            dialect_insert(conn, schema.spans).on_conflict_do_nothing(),
            [_row(s) for s in spans],
        )
        for start in range(0, len(trace_ids), _CHUNK):
            summaries = _summaries(conn, trace_ids[start : start + _CHUNK])
            if summaries:
                kept = schema.traces.c
                upsert = dialect_insert(conn, schema.traces)
                upsert = upsert.on_conflict_do_update(
                    index_elements=[kept.id],
                    set_={
                        **{
                            c.name: upsert.excluded[c.name]
                            for c in kept
                            if c.name not in ("id", "experiment_id")  # filed when it was
                        },
                        # a session or user the trace's info named (record_trace_info) stays
                        "session_id": func.coalesce(upsert.excluded.session_id, kept.session_id),
                        "user_id": func.coalesce(upsert.excluded.user_id, kept.user_id),
                    },
                )
                conn.execute(upsert, [_row(t) for t in summaries])
        _record_named(conn, spans)


@operation("POST /traces/{trace_id}/prompts", idempotent=True)
def link_prompts(trace_id: str, versions: list[str], *, workspace: Workspace | None = None) -> None:
    """Record that a trace used these prompt versions (``prompts:/name/3``): lineage edges
    ``prompt_version → trace`` (``used_by``). Spans that name the version they rendered
    (``cauce.prompt.version``, MLflow's ``mlflow.linkedPrompts``) are linked when stored."""
    ws = workspace or current()
    check_hex(trace_id, 32, "trace_id")
    wanted: set[tuple[str, int]] = set()
    for index, ref in enumerate(versions):
        found = _PROMPT_REF.match(ref) if isinstance(ref, str) else None
        if found is None:
            raise InvalidInput(
                f"versions.{index}: a prompt version, prompts:/NAME/VERSION, not {ref!r}",
                details={"field": f"versions.{index}"},
            )
        wanted.add((found["name"], int(found["version"])))
    with ws.store.write() as conn:
        ids = _prompt_version_ids(conn, wanted)
        missing = sorted(wanted - set(ids))
        if missing:
            name, version = missing[0]
            raise NotFound(f"prompt {name!r} has no version {version}")
        for version_id in ids.values():
            add_edge(conn, ("prompt_version", version_id), ("trace", trace_id), "used_by")


@operation("POST /runs/{run_id}/traces", idempotent=True)
def link_traces_to_run(
    run_id: str, trace_ids: Sequence[str], *, workspace: Workspace | None = None
) -> None:
    """Record that traces were made for a run (an evaluation's rows, answered outside it):
    lineage edges ``run → trace`` (``produced``), as a trace made while the run is active gets,
    and the stored ones filed under no experiment filed under the run's. A trace not stored yet
    (its spans still on their way) is linked all the same."""
    ws = workspace or current()
    if len(trace_ids) > MAX_LINKED:
        raise InvalidInput(
            f"trace_ids: at most {MAX_LINKED} a call, not {len(trace_ids)}",
            details={"field": "trace_ids"},
        )
    for index, trace_id in enumerate(trace_ids):
        check_hex(str(trace_id), 32, f"trace_ids.{index}")
    with ws.store.write() as conn:
        if conn.scalar(select(schema.runs.c.id).where(schema.runs.c.id == run_id)) is None:
            raise NotFound(f"run {run_id!r} does not exist")
        _link_runs(conn, {(str(trace_id), run_id) for trace_id in trace_ids})


def write_tags(conn: Any, tags: dict[str, dict[str, str]]) -> None:
    """Set traces' tags (``{trace_id: {key: value}}``) in the caller's transaction; a key
    given again takes the newer value."""
    rows = [
        {"trace_id": trace_id, "key": key, "value": value}
        for trace_id, values in sorted(tags.items())
        for key, value in sorted(values.items())
    ]
    if rows:
        stmt = dialect_insert(conn, schema.trace_tags)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["trace_id", "key"], set_={"value": stmt.excluded.value}
            ),
            rows,
        )


def _tags_named(spans: list[FinishedSpan]) -> dict[str, dict[str, str]]:
    """The tags spans give their traces (one that is not a tag is left out, not refused: the
    spans are another tracer's)."""
    found: dict[str, dict[str, str]] = {}
    for one in spans:
        given = [
            (key.removeprefix(TRACE_TAG), value)
            for key, value in one.attributes.items()
            if key.startswith(TRACE_TAG)
        ]
        given += [(name, "") for key in TAG_LISTS for name in _listed(one.attributes.get(key))]
        for key, value in given:
            tag = _tag(key, value)
            if tag is not None:
                found.setdefault(one.trace_id, {})[tag[0]] = tag[1]
    return found


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):  # a list sent as JSON text
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return value if isinstance(value, list) else []


def _tag(key: Any, value: Any) -> tuple[str, str] | None:
    try:
        return next(iter(check_tags({str(key): "" if value is None else value}).items()))
    except InvalidInput:
        return None


def _link_used_prompts(conn: Any, spans: list[FinishedSpan]) -> None:
    """Link each trace to the stored prompt versions its spans name (a version this workspace
    does not hold, an application's own, is left out)."""
    used = {(s.trace_id, ref) for s in spans for ref in _prompts_named(s.attributes)}
    if not used:
        return
    ids = _prompt_version_ids(conn, {ref for _, ref in used})
    for trace_id, ref in sorted(used):
        if ref in ids:
            add_edge(conn, ("prompt_version", ids[ref]), ("trace", trace_id), "used_by")


def _record_named(conn: Any, spans: list[FinishedSpan]) -> None:
    """What stored spans name of their traces: the prompt versions and the run they were made
    in, and their tags."""
    _link_used_prompts(conn, spans)
    _link_runs(conn, {(s.trace_id, s.attributes[RUN]) for s in spans if RUN in s.attributes})
    write_tags(conn, _tags_named(spans))


def _link_runs(conn: Any, made_in: set[tuple[str, Any]]) -> None:
    """Link traces to the stored runs they were made in (``{(trace_id, run_id)}``; a run this
    workspace does not hold is left out), and file those filed under no experiment under the
    run's."""
    named = sorted({str(run_id) for _, run_id in made_in})
    if not named:
        return
    runs, kept = schema.runs.c, schema.traces.c
    found = conn.execute(select(runs.id, runs.experiment_id).where(runs.id.in_(named)))
    stored = {row.id: row.experiment_id for row in found}
    of_run: dict[str, list[str]] = {}
    for trace_id, run_id in sorted(made_in, key=str):
        if str(run_id) in stored:
            add_edge(conn, ("run", str(run_id)), ("trace", trace_id), "produced")
            of_run.setdefault(str(run_id), []).append(trace_id)
    for run_id, trace_ids in of_run.items():
        conn.execute(
            schema.traces.update()
            .where(kept.id.in_(trace_ids), kept.experiment_id.is_(None))
            .values(experiment_id=stored[run_id])
        )


def _prompts_named(attributes: dict[str, Any]) -> Iterable[tuple[str, int]]:
    found = _PROMPT_REF.match(str(attributes.get(PROMPT_VERSION) or ""))
    if found is not None:
        yield found["name"], int(found["version"])
    linked = attributes.get(MLFLOW_LINKED_PROMPTS)
    if not isinstance(linked, str):
        return
    try:
        entries = json.loads(linked)
    except ValueError:
        return  # another tracer's attribute: not Cauce's to refuse
    for entry in entries if isinstance(entries, list) else []:
        version = str(entry.get("version", "")) if isinstance(entry, dict) else ""
        if version.isdigit() and isinstance(entry.get("name"), str):
            yield entry["name"], int(version)


def _prompt_version_ids(conn: Any, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    v, p = schema.prompt_versions.c, schema.prompts.c
    names = sorted({name for name, _ in wanted})
    rows = conn.execute(
        select(p.name, v.version, v.id)
        .join(schema.prompts, p.id == v.prompt_id)
        .where(p.name.in_(names), v.version.in_(sorted({n for _, n in wanted})))
    )
    return {(r.name, r.version): r.id for r in rows if (r.name, r.version) in wanted}


def record_trace_info(
    trace_id: str,
    *,
    name: str,
    started_at: int,
    ended_at: int,
    status: str,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: dict[str, Any] | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    workspace: Workspace | None = None,
) -> None:
    """What a tracer says of a whole trace apart from its spans (MLflow's trace info, sent when
    its root ends): its session and user are added to the trace's summary, its tags set, the
    run it was made in linked, the experiment it was sent to (its name or id) kept. Before the
    root span arrives the summary is this one; the spans' sums replace it when they do."""
    ws = workspace or current()
    check_hex(trace_id, 32, "trace_id")
    checked = check_tags(tags or {})
    _check_choice(status, _STATUSES, "status")
    _check_times(started_at, ended_at, "trace", "started_at", "ended_at")
    summary = FinishedTrace(
        id=trace_id,
        name=name,
        root_span_id="",  # not known until the root span arrives
        started_at=started_at,
        ended_at=ended_at,
        status=status,
        span_count=0,
        input_tokens=0,
        output_tokens=0,
        cost=None,
        session_id=id_text(session_id),
        user_id=id_text(user_id),
    )
    kept = schema.traces.c
    with ws.store.write() as conn:
        filed = None if experiment is None else require_experiment(conn, experiment).id
        upsert = dialect_insert(conn, schema.traces).values(
            {**_row(summary), "experiment_id": filed}
        )
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[kept.id],
                set_={
                    "session_id": func.coalesce(kept.session_id, upsert.excluded.session_id),
                    "user_id": func.coalesce(kept.user_id, upsert.excluded.user_id),
                    "experiment_id": func.coalesce(
                        upsert.excluded.experiment_id, kept.experiment_id
                    ),
                },
            )
        )
        write_tags(conn, {trace_id: checked})
        _link_runs(conn, {(trace_id, run_id)} if run_id else set())


def _summaries(conn: Any, trace_ids: list[str]) -> list[FinishedTrace]:
    """The summaries of those traces, from their stored spans: one query for their spans' few
    columns (the session and user as two JSON values, not every
    text a span keeps), summed here.

    The ids are written into the statement (checked hex): each text is new, so psycopg never
    prepares it, and PostgreSQL plans it for the table as it is now. Prepared, it kept the plan
    made while the table was nearly empty, a scan of all of it: 66 ms a request by the time
    the table held 20,000 spans, against 1 ms."""
    from sqlalchemy import bindparam, select

    s = schema.spans.c
    rows = conn.execute(
        select(
            s.trace_id,
            s.span_id,
            s.parent_id,
            s.name,
            s.started_ns,
            s.ended_ns,
            s.status,
            s.input_tokens,
            s.output_tokens,
            s.cost,
            s.attributes[SESSION].as_string(),
            s.attributes[USER].as_string(),
        ).where(s.trace_id.in_(bindparam("trace_ids", trace_ids, literal_execute=True)))
    ).all()
    by_trace: dict[str, list[Any]] = {}
    for row in sorted(rows, key=lambda r: (r.trace_id, r.started_ns)):
        by_trace.setdefault(row.trace_id, []).append(row)
    found = []
    for trace_id, spans in by_trace.items():
        root = next((one for one in spans if one.parent_id is None), None)
        if root is None:
            # Until the root arrives (or for good, when it is another system's: a service
            # called inside someone else's trace) the earliest span whose parent is not here.
            held = {one.span_id for one in spans}
            root = next((one for one in spans if one.parent_id not in held), spans[0])
        costs = [one.cost for one in spans if one.cost is not None]
        # The root's session and user, else the first span's that names them.
        session = next((one[10] for one in [root, *spans] if one[10] is not None), None)
        user = next((one[11] for one in [root, *spans] if one[11] is not None), None)
        found.append(
            FinishedTrace(
                id=trace_id,
                name=root.name,
                root_span_id=root.span_id,
                started_at=root.started_ns // 1_000_000,
                ended_at=root.ended_ns // 1_000_000,
                status=root.status,
                span_count=len(spans),
                input_tokens=sum(one.input_tokens or 0 for one in spans),
                output_tokens=sum(one.output_tokens or 0 for one in spans),
                cost=sum(costs) if costs else None,
                session_id=id_text(session),
                user_id=id_text(user),
            )
        )
    return found


def _row(one: FinishedSpan | FinishedTrace) -> dict[str, Any]:
    """A span's or a summary's columns. Not ``dataclasses.asdict``: it deep-copies every
    attribute and event, which was 40% of storing a batch of spans."""
    return dict(vars(one))


_CHUNK = 500  # traces summed by one query
MAX_LINKED = 1000  # traces linked to a run by one call
_KINDS = ("internal", "client", "server", "producer", "consumer")
_STATUSES = ("ok", "error")
_BIG = 2**63


def _check_span(one: FinishedSpan, where: str) -> None:
    check_hex(one.trace_id, 32, f"{where}.trace_id")
    check_hex(one.span_id, 16, f"{where}.span_id")
    if one.parent_id is not None:
        check_hex(one.parent_id, 16, f"{where}.parent_id")
    _check_choice(one.kind, _KINDS, f"{where}.kind")
    _check_choice(one.status, _STATUSES, f"{where}.status")
    if one.operation is not None and len(one.operation) > 32:
        raise InvalidInput(
            f"{where}.operation: at most 32 characters", details={"field": f"{where}.operation"}
        )
    _check_times(one.started_ns, one.ended_ns, where, "started_ns", "ended_ns")
    for name in ("input_tokens", "output_tokens"):
        _check_count(getattr(one, name), f"{where}.{name}")


def _check_trace(one: FinishedTrace, where: str) -> None:
    check_hex(one.id, 32, f"{where}.id")
    check_hex(one.root_span_id, 16, f"{where}.root_span_id")
    _check_choice(one.status, _STATUSES, f"{where}.status")
    _check_times(one.started_at, one.ended_at, where, "started_at", "ended_at")
    for name in ("span_count", "input_tokens", "output_tokens"):
        _check_count(getattr(one, name), f"{where}.{name}")
    for name in ("session_id", "user_id"):
        if getattr(one, name) is not None:
            check_id(getattr(one, name), f"{where}.{name}")


def _check_choice(value: str, choices: tuple[str, ...], field_name: str) -> None:
    if value not in choices:
        raise InvalidInput(
            f"{field_name}: one of {', '.join(choices)}, not {value!r}",
            details={"field": field_name},
        )


def _check_times(start: int, end: int, where: str, first: str, last: str) -> None:
    for name, value in ((first, start), (last, end)):
        _check_count(value, f"{where}.{name}")
    if end < start:
        raise InvalidInput(
            f"{where}.{last} is before {where}.{first}", details={"field": f"{where}.{last}"}
        )


def _check_count(value: int | None, field_name: str) -> None:
    if value is not None and not 0 <= value < _BIG:
        raise InvalidInput(
            f"{field_name}: {value} is not a count from 0 to 2**63-1",
            details={"field": field_name},
        )
