"""Tracing with OpenTelemetry and its GenAI semantic conventions.

LLM calls, retrievals, flow runs and their nodes make spans with ``opentelemetry-sdk``: named
``{gen_ai.operation.name} {gen_ai.request.model}`` for model calls, with the ``gen_ai.*``
attributes (provider, request parameters, finish reasons, token usage) and Cauce's own
``cauce.cost``. Spans are written to the workspace's store in batches (``cauce traces``;
:func:`record_spans`, through the server for a workspace on one) and, when
``CAUCE_OTLP_ENDPOINT`` is set, exported over OTLP/HTTP too.

Texts (prompts, completions, retrieved chunks, node inputs and outputs) go through
:meth:`Span.content`: left out when ``CAUCE_TRACE_CONTENT`` is false, and passed through the
redaction hook (``CAUCE_TRACE_REDACT``, or :func:`set_redactor`) before anything is stored or
exported.

Example::

    with cauce.tracing.span("answer question", operation="invoke_agent") as span:
        span.content("cauce.input", question)
        ...
    cauce.tracing.get_trace(span.trace_id)
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, or_, select

from cauce.config import load_object
from cauce.errors import InvalidInput, NotFound
from cauce.operations import operation
from cauce.store import dialect_insert, schema
from cauce.store.schema import spans, traces
from cauce.validation import check_int, check_limit
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Span as OtelSpan

    from cauce.data.assets import DatasetVersion

__all__ = [
    "FinishedSpan",
    "FinishedTrace",
    "SessionSummary",
    "Span",
    "SpanRecord",
    "Trace",
    "TraceSummary",
    "UserSummary",
    "add_evaluation",
    "add_root_evaluations",
    "flush",
    "get_trace",
    "list_sessions",
    "list_traces",
    "list_users",
    "log_feedback",
    "query_sessions",
    "query_traces",
    "query_users",
    "read_trace",
    "record_evaluation",
    "record_root_evaluations",
    "record_spans",
    "send_root_spans_to",
    "session",
    "set_redactor",
    "span",
    "to_dataset",
    "trace_names",
    "trace_rows",
]

OPERATION = "gen_ai.operation.name"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
COST = "cauce.cost"
EVALUATION_EVENT = "gen_ai.evaluation.result"
SESSION = "session.id"
USER = "user.id"
MAX_ID = 256

_lock = threading.Lock()
_tracings: dict[int, _Tracing] = {}
_sinks: dict[int, tuple[Workspace, Callable[[FinishedSpan, FinishedTrace], None]]] = {}
_redactor: Callable[[str], str] | None = None
# The session and user attributes every span made here gets (see ``session``).
_belongs: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("cauce_belongs", default=())


# -- making spans ------------------------------------------------------------------------------


class Span:
    """An open span: set attributes, texts (subject to capture and redaction), usage."""

    def __init__(self, otel: OtelSpan, capture: bool, redact: Callable[[str], str] | None):
        self._otel = otel
        self._capture = capture
        self._redact = redact

    @property
    def trace_id(self) -> str:
        """The trace's id, 32 hex characters."""
        return f"{self._otel.get_span_context().trace_id:032x}"

    @property
    def span_id(self) -> str:
        """The span's id, 16 hex characters."""
        return f"{self._otel.get_span_context().span_id:016x}"

    def set(self, key: str, value: Any) -> None:
        """Set an attribute (None is left out; mappings and mixed lists become JSON)."""
        if value is None:
            return
        self._otel.set_attribute(key, _attribute(value))

    def content(self, key: str, value: Any) -> None:
        """Set a text attribute that holds content: redacted first; left out when the
        workspace keeps no content."""
        if not self._capture or value is None:
            return
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        self._otel.set_attribute(key, self._redact(text) if self._redact else text)

    def usage(
        self, input_tokens: int | None, output_tokens: int | None, cost: float | None
    ) -> None:
        """Token usage as the server reported it, and its cost."""
        self.set(INPUT_TOKENS, input_tokens)
        self.set(OUTPUT_TOKENS, output_tokens)
        self.set(COST, cost)

    def evaluation(
        self, name: str, score: float | None, label: str | None, explanation: str | None = None
    ) -> None:
        """A ``gen_ai.evaluation.result`` event on this span."""
        self._otel.add_event(
            EVALUATION_EVENT, _evaluation_attributes(name, score, label, explanation)
        )

    def fail(self, exc: BaseException) -> None:
        """Mark the span failed with the error's type and message."""
        from opentelemetry.trace import Status, StatusCode

        self._otel.set_attribute("error.type", type(exc).__name__)
        self._otel.set_status(Status(StatusCode.ERROR, str(exc)[:1000]))

    def end(self) -> None:
        """End a span started with :func:`start` (``with span(...)`` ends its own)."""
        self._otel.end()


@contextmanager
def span(
    name: str,
    *,
    operation: str | None = None,
    kind: str = "internal",
    attributes: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> Iterator[Span]:
    """A span around a block, the current span's child; an exception marks it failed."""
    tracing = _tracing(workspace or current())
    with tracing.tracer.start_as_current_span(
        name, kind=_kind(kind), record_exception=False, set_status_on_exception=False
    ) as otel:
        wrapped = Span(otel, tracing.capture, tracing.redact)
        wrapped.set(OPERATION, operation)
        for key, value in {**dict(_belongs.get()), **(attributes or {})}.items():
            wrapped.set(key, value)
        try:
            yield wrapped
        except BaseException as exc:
            wrapped.fail(exc)
            raise


def start(
    name: str,
    *,
    operation: str | None = None,
    kind: str = "internal",
    attributes: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> Span:
    """A span the caller ends (a streamed answer's span outlives the call that starts it)."""
    ws = workspace or current()
    tracing = _tracing(ws)
    sink = _sinks.get(id(ws))
    otel: Any
    if sink is not None and sink[0] is ws and not ws.settings.otlp_endpoint and _at_root():
        otel = _LocalSpan(name, kind, sink[1])
    else:
        otel = tracing.tracer.start_span(name, kind=_kind(kind))
    wrapped = Span(otel, tracing.capture, tracing.redact)
    wrapped.set(OPERATION, operation)
    for key, value in {**dict(_belongs.get()), **(attributes or {})}.items():
        wrapped.set(key, value)
    return wrapped


@contextmanager
def session(session_id: str | None = None, *, user_id: str | None = None) -> Iterator[None]:
    """Traces made in this block belong to the session and the user given (a conversation,
    the person it is with): their spans carry ``session.id`` and ``user.id``, and
    :func:`list_traces` and :func:`list_sessions` find them by either."""
    given = {SESSION: session_id, USER: user_id}
    for key, value in given.items():
        if value is not None:
            _check_id(value, "session_id" if key == SESSION else "user_id")
    if session_id is None and user_id is None:
        raise InvalidInput("give a session_id, a user_id or both", details={"field": "session_id"})
    merged = {**dict(_belongs.get()), **{k: v for k, v in given.items() if v is not None}}
    token = _belongs.set(tuple(merged.items()))
    try:
        yield
    finally:
        _belongs.reset(token)


def send_root_spans_to(
    sink: Callable[[FinishedSpan, FinishedTrace], None] | None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Root spans made with :func:`start` in this process on ``workspace`` go to ``sink`` when
    they end, as a finished span and its trace's summary, instead of through OpenTelemetry's
    batch exporter and its thread (the router hands its relays' spans to its collector's
    writer process, which stores them); None sets it back. Spans that also go to OTLP, and
    spans started inside another span, still take OpenTelemetry's way."""
    ws = workspace or current()
    with _lock:
        if sink is None:
            _sinks.pop(id(ws), None)
        else:
            _sinks[id(ws)] = (ws, sink)


def set_redactor(redact: Callable[[str], str] | None) -> None:
    """Redact every text a trace keeps with ``redact`` (this process; None removes it).
    It runs after the workspace's ``CAUCE_TRACE_REDACT`` hook, if any."""
    global _redactor
    _redactor = redact


def flush(workspace: Workspace | None = None) -> None:
    """Write the spans still buffered to the store (and to OTLP)."""
    ws = workspace or current()
    tracing = _tracings.get(id(ws))
    if tracing is not None and tracing.workspace is ws:
        tracing.provider.force_flush()


class _Tracing:
    """One workspace's tracer provider: a batch processor to the store, and to OTLP."""

    def __init__(self, ws: Workspace):
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from cauce import __version__

        self.workspace = ws
        self.provider = TracerProvider(resource=Resource.create({"service.name": "cauce"}))
        self.provider.add_span_processor(
            BatchSpanProcessor(_store_exporter(ws), schedule_delay_millis=500)
        )
        endpoint = ws.settings.otlp_endpoint
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=500)
            )
        self.tracer = self.provider.get_tracer("cauce", __version__)
        self.capture = ws.settings.trace_content
        hook = ws.settings.trace_redact
        self._hook: Callable[[str], str] | None = (
            load_object(hook, what="CAUCE_TRACE_REDACT hook") if hook else None
        )

    def redact(self, text: str) -> str:
        if self._hook is not None:
            text = str(self._hook(text))
        if _redactor is not None:
            text = str(_redactor(text))
        return text


class _LocalSpan:
    """A root span kept without OpenTelemetry (the part of its span API that :class:`Span`
    calls), handed to a sink as a :class:`FinishedSpan` when it ends."""

    def __init__(
        self, name: str, kind: str, sink: Callable[[FinishedSpan, FinishedTrace], None]
    ) -> None:
        self.name, self.kind, self.sink = name, kind, sink
        self.context = _Context(random.getrandbits(128) or 1, random.getrandbits(64) or 1)
        self.started_ns = time.time_ns()
        self.attributes: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.status, self.status_message = "ok", None
        self.ended = False

    def get_span_context(self) -> _Context:
        return self.context

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: dict[str, Any]) -> None:
        self.events.append({"name": name, "time_ns": time.time_ns(), "attributes": attributes})

    def set_status(self, status: Any) -> None:
        self.status, self.status_message = "error", status.description

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        attributes = self.attributes
        row = FinishedSpan(
            trace_id=f"{self.context.trace_id:032x}",
            span_id=f"{self.context.span_id:016x}",
            parent_id=None,
            name=self.name,
            kind=self.kind,
            operation=attributes.get(OPERATION),
            started_ns=self.started_ns,
            ended_ns=time.time_ns(),
            status=self.status,
            status_message=self.status_message,
            input_tokens=attributes.get(INPUT_TOKENS),
            output_tokens=attributes.get(OUTPUT_TOKENS),
            cost=attributes.get(COST),
            attributes=attributes,
            events=self.events,
        )
        sums = [1, row.input_tokens or 0, row.output_tokens or 0, row.cost, None, None]
        self.sink(row, _summary(row, sums))


@dataclass(frozen=True)
class _Context:
    trace_id: int
    span_id: int


def _at_root() -> bool:
    """Whether a span started now would be a root (no span is current)."""
    from opentelemetry import trace

    return not trace.get_current_span().get_span_context().is_valid


def _tracing(ws: Workspace) -> _Tracing:
    with _lock:
        found = _tracings.get(id(ws))
        if found is None or found.workspace is not ws:
            found = _tracings[id(ws)] = _Tracing(ws)
        return found


def _kind(name: str) -> Any:
    from opentelemetry.trace import SpanKind

    return {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}[
        name
    ]


def _attribute(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    return json.dumps(value, default=str)


def _evaluation_attributes(
    name: str, score: float | None, label: str | None, explanation: str | None
) -> dict[str, Any]:
    found: dict[str, Any] = {"gen_ai.evaluation.name": name}
    if score is not None:
        found["gen_ai.evaluation.score.value"] = float(score)
    if label is not None:
        found["gen_ai.evaluation.score.label"] = label
    if explanation is not None:
        found["gen_ai.evaluation.explanation"] = explanation
    return found


# -- storing spans -----------------------------------------------------------------------------


def _store_exporter(ws: Workspace) -> Any:
    """An OpenTelemetry span exporter that writes to the workspace's store, one transaction
    per batch (:func:`record_spans`); a root span's arrival writes its trace's summary."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class StoreExporter(SpanExporter):
        def __init__(self) -> None:
            # Spans of traces whose root has not ended yet, summed (a trace's spans all end in
            # this process, children first): the root's arrival writes the summary without
            # reading its spans back.
            self.open: dict[str, list[Any]] = {}

        def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
            rows = [_span_row(s) for s in batch]
            summaries = []
            for row in rows:
                sums = self.open.setdefault(row.trace_id, [0, 0, 0, None, None, None])
                sums[0] += 1
                sums[1] += row.input_tokens or 0
                sums[2] += row.output_tokens or 0
                if row.cost is not None:
                    sums[3] = (sums[3] or 0.0) + row.cost
                sums[4] = sums[4] or row.attributes.get(SESSION)
                sums[5] = sums[5] or row.attributes.get(USER)
                if row.parent_id is None:
                    summaries.append(_summary(row, self.open.pop(row.trace_id)))
            if len(self.open) > MAX_OPEN_TRACES:  # roots that never end: forget the oldest
                for trace_id in list(self.open)[: len(self.open) - MAX_OPEN_TRACES]:
                    del self.open[trace_id]
            record_spans(rows, summaries, workspace=ws)
            return SpanExportResult.SUCCESS

    return StoreExporter()


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
                [asdict(s) for s in spans],
            )
        if summaries:
            conn.execute(
                dialect_insert(conn, schema.traces).on_conflict_do_nothing(),
                [asdict(t) for t in summaries],
            )


_HEX = frozenset("0123456789abcdef")
_KINDS = ("internal", "client", "server", "producer", "consumer")
_STATUSES = ("ok", "error")
_BIG = 2**63


def _check_span(one: FinishedSpan, where: str) -> None:
    _check_hex(one.trace_id, 32, f"{where}.trace_id")
    _check_hex(one.span_id, 16, f"{where}.span_id")
    if one.parent_id is not None:
        _check_hex(one.parent_id, 16, f"{where}.parent_id")
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
    _check_hex(one.id, 32, f"{where}.id")
    _check_hex(one.root_span_id, 16, f"{where}.root_span_id")
    _check_choice(one.status, _STATUSES, f"{where}.status")
    _check_times(one.started_at, one.ended_at, where, "started_at", "ended_at")
    for name in ("span_count", "input_tokens", "output_tokens"):
        _check_count(getattr(one, name), f"{where}.{name}")
    for name in ("session_id", "user_id"):
        if getattr(one, name) is not None:
            _check_id(getattr(one, name), f"{where}.{name}")


def _check_id(value: Any, field_name: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise InvalidInput(
            f"{field_name}: a text of 1 to {MAX_ID} characters, not {value!r}",
            details={"field": field_name},
        )


def _check_hex(value: str, size: int, field_name: str) -> None:
    if len(value) != size or not set(value) <= _HEX:
        raise InvalidInput(
            f"{field_name}: {size} lowercase hex characters, not {value!r}",
            details={"field": field_name},
        )


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


MAX_OPEN_TRACES = 100_000


def _span_row(otel: ReadableSpan) -> FinishedSpan:
    from opentelemetry.trace import StatusCode

    context = otel.get_span_context()
    assert context is not None  # an SDK span always has one
    attributes = _plain(otel.attributes)
    events = [
        {
            "name": e.name,
            "time_ns": e.timestamp,
            "attributes": _plain(e.attributes),
        }
        for e in otel.events
    ]
    status = otel.status.status_code
    return FinishedSpan(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=f"{otel.parent.span_id:016x}" if otel.parent else None,
        name=otel.name,
        kind=otel.kind.name.lower(),
        operation=attributes.get(OPERATION),
        started_ns=otel.start_time or 0,
        ended_ns=otel.end_time or 0,
        status="error" if status == StatusCode.ERROR else "ok",
        status_message=otel.status.description,
        input_tokens=attributes.get(INPUT_TOKENS),
        output_tokens=attributes.get(OUTPUT_TOKENS),
        cost=attributes.get(COST),
        attributes=attributes,
        events=events,
    )


def _plain(attributes: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attributes or {}).items()}


def _summary(root: FinishedSpan, sums: list[Any]) -> FinishedTrace:
    """A trace's summary from its root and its spans' sums: count, tokens, cost, and the
    first session and user a span named (the root's own first)."""
    count, inputs, outputs, cost, session_id, user_id = sums
    return FinishedTrace(
        id=root.trace_id,
        name=root.name,
        root_span_id=root.span_id,
        started_at=root.started_ns // 1_000_000,
        ended_at=root.ended_ns // 1_000_000,
        status=root.status,
        span_count=count,
        input_tokens=inputs,
        output_tokens=outputs,
        cost=cost,
        session_id=_text(root.attributes.get(SESSION, session_id)),
        user_id=_text(root.attributes.get(USER, user_id)),
    )


def _text(value: Any) -> str | None:
    """An id as a trace keeps it: text, cut to its longest; an empty one is none."""
    return None if value is None else str(value)[:MAX_ID] or None


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceSummary:
    """One trace: its root's name, time and status, its spans' tokens and cost, the session
    and user it belongs to, and the scores on it (evaluations, feedback), by name."""

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

    def children(self, span_id: str | None) -> list[SpanRecord]:
        """The spans whose parent is ``span_id`` (None: the roots)."""
        return [s for s in self.spans if s.parent_id == span_id]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**self.summary.to_dict(), "spans": [s.to_dict() for s in self.spans]}


def list_traces(
    *,
    name: str | None = None,
    status: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[TraceSummary]:
    """Recent traces, newest first (the spans this process still buffers written first):
    of a name, a status, a session, a user, started at ``since_ms`` or later; ``before`` a
    trace (its id, or a unique prefix), the ones older than it, so the last one listed names
    the next page."""
    ws = workspace or current()
    flush(ws)
    return query_traces(
        name=name,
        status=status,
        session_id=session_id,
        user_id=user_id,
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
    since_ms: int | None = None,
    before: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[TraceSummary]:
    """Stored traces, newest first; ``before`` a trace, the ones older than it."""
    ws = workspace or current()
    check_limit(limit)
    query = _with_root().order_by(traces.c.started_at.desc(), traces.c.id).limit(limit)
    if since_ms is not None:
        check_int(since_ms, "since_ms")
        query = query.where(traces.c.started_at >= since_ms)
    for column, value in (
        (traces.c.name, name),
        (traces.c.status, status),
        (traces.c.session_id, session_id),
        (traces.c.user_id, user_id),
    ):
        if value is not None:
            query = query.where(column == value)
    with ws.store.read() as conn:
        if before is not None:
            after = _require_trace(conn, before)
            query = query.where(
                traces.c.started_at <= after.started_at,  # a range the index answers
                or_(traces.c.started_at < after.started_at, traces.c.id > after.id),
            )
        return [_trace_summary(r) for r in conn.execute(query)]


def list_sessions(
    *, user_id: str | None = None, limit: int = 50, workspace: Workspace | None = None
) -> list[SessionSummary]:
    """Sessions, the one with the latest trace first (the spans this process still buffers
    written first); ``user_id``: only the sessions with a trace of that user."""
    ws = workspace or current()
    flush(ws)
    return query_sessions(user_id=user_id, limit=limit, workspace=ws)


@operation("GET /trace-sessions")
def query_sessions(
    *, user_id: str | None = None, limit: int = 50, workspace: Workspace | None = None
) -> list[SessionSummary]:
    """Stored sessions, the one with the latest trace first: each one's traces summed."""
    ws = workspace or current()
    check_limit(limit)
    query = _totals(traces.c.session_id).limit(limit)
    if user_id is not None:
        of_user = select(traces.c.session_id).where(traces.c.user_id == user_id)
        query = query.where(traces.c.session_id.in_(of_user))
    with ws.store.read() as conn:
        found = conn.execute(query).all()
        users: dict[str, list[str]] = {}
        if found:
            pairs = conn.execute(
                select(traces.c.session_id, traces.c.user_id)
                .distinct()
                .where(
                    traces.c.session_id.in_([r.id for r in found]),
                    traces.c.user_id.is_not(None),
                )
                .order_by(traces.c.session_id, traces.c.user_id)
            )
            for session_id, user in pairs:
                users.setdefault(session_id, []).append(user)
    return [SessionSummary(**_summed(r), user_ids=users.get(r.id, [])) for r in found]


def list_users(*, limit: int = 50, workspace: Workspace | None = None) -> list[UserSummary]:
    """Users, the one with the latest trace first (the spans this process still buffers
    written first): each one's traces, sessions, tokens and cost."""
    ws = workspace or current()
    flush(ws)
    return query_users(limit=limit, workspace=ws)


@operation("GET /trace-users")
def query_users(*, limit: int = 50, workspace: Workspace | None = None) -> list[UserSummary]:
    """Stored users, the one with the latest trace first: each one's traces summed."""
    from sqlalchemy import distinct, func

    ws = workspace or current()
    check_limit(limit)
    sessions = func.count(distinct(traces.c.session_id)).label("sessions")
    query = _totals(traces.c.user_id).add_columns(sessions).limit(limit)
    with ws.store.read() as conn:
        found = conn.execute(query).all()
    return [UserSummary(**_summed(r), sessions=r.sessions) for r in found]


def _totals(group: Any) -> Select[Any]:
    """The traces summed by ``group`` (a session, a user), the latest trace's group first."""
    from sqlalchemy import case, func

    last = func.max(traces.c.started_at)
    return (
        select(
            group.label("id"),
            func.count().label("traces"),
            func.sum(case((traces.c.status == "error", 1), else_=0)).label("errors"),
            func.min(traces.c.started_at).label("first_at"),
            last.label("last_at"),
            func.sum(traces.c.input_tokens).label("input_tokens"),
            func.sum(traces.c.output_tokens).label("output_tokens"),
            func.sum(traces.c.cost).label("cost"),
        )
        .where(group.is_not(None))
        .group_by(group)
        .order_by(last.desc(), group)
    )


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
    """A trace with its spans; a unique prefix of 8 or more hex characters will do."""
    ws = workspace or current()
    flush(ws)
    return read_trace(trace_id, workspace=ws)


@operation("GET /traces/{trace_id}")
def read_trace(trace_id: str, *, workspace: Workspace | None = None) -> Trace:
    """A stored trace with its spans, parents before children; an id prefix of 8 or more hex
    characters will do."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _require_trace(conn, trace_id)
        found = conn.execute(
            select(spans).where(spans.c.trace_id == row.id).order_by(spans.c.started_ns)
        ).all()
    return Trace(_trace_summary(row), _tree_order([_span_record(r) for r in found]))


def record_evaluation(
    trace_id: str,
    span_id: str,
    name: str,
    score: float | None,
    label: str | None,
    explanation: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Attach a ``gen_ai.evaluation.result`` event to a stored span (an evaluation run after
    the trace was recorded)."""
    ws = workspace or current()
    flush(ws)
    add_evaluation(trace_id, span_id, name, score, label, explanation, workspace=ws)


@operation("POST /traces/{trace_id}/spans/{span_id}/evaluations")
def add_evaluation(
    trace_id: str,
    span_id: str,
    name: str,
    score: float | None,
    label: str | None,
    explanation: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Attach a ``gen_ai.evaluation.result`` event to a span of the store."""
    _check_result(name, score, label, explanation, "")
    ws = workspace or current()
    with ws.store.write() as conn:
        row = conn.execute(
            select(spans.c.events).where(spans.c.trace_id == trace_id, spans.c.span_id == span_id)
        ).first()
        if row is None:
            raise NotFound(f"trace {trace_id} has no span {span_id}")
        event = {
            "name": EVALUATION_EVENT,
            "time_ns": time.time_ns(),
            "attributes": _evaluation_attributes(name, score, label, explanation),
        }
        conn.execute(
            spans.update()
            .where(spans.c.trace_id == trace_id, spans.c.span_id == span_id)
            .values(events=[*row.events, event])
        )


def log_feedback(
    trace_id: str,
    name: str,
    score: float | None = None,
    label: str | None = None,
    explanation: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Feedback on a stored trace (a person's thumbs up, a rating, a correction): an
    evaluation result on its root span, as an evaluator's is, so ``to_dataset`` makes a score
    the column ``eval.NAME``. A GenAI endpoint sends each answer's trace id in its
    ``cauce-trace-id`` header."""
    _check_hex(trace_id, 32, "trace_id")
    if score is None and label is None:
        raise InvalidInput("feedback needs a score, a label or both", details={"field": "score"})
    ws = workspace or current()
    flush(ws)
    if not add_root_evaluations([(trace_id, name, score, label, explanation)], workspace=ws):
        raise NotFound(
            f"no trace {trace_id}",
            hint="a GenAI endpoint stores an answer's trace within seconds; "
            "cauce traces list shows the stored ones",
        )


def record_root_evaluations(
    results: list[tuple[str, str, float | None, str | None, str | None]],
    *,
    workspace: Workspace | None = None,
) -> int:
    """Attach many evaluation results, ``(trace_id, name, score, label, explanation)``, each
    to its trace's root span, in one transaction; returns how many were attached (a trace
    that is not stored is skipped)."""
    if not results:
        return 0
    ws = workspace or current()
    flush(ws)
    return add_root_evaluations(results, workspace=ws)


@operation("POST /traces/evaluations")
def add_root_evaluations(
    results: list[tuple[str, str, float | None, str | None, str | None]],
    *,
    workspace: Workspace | None = None,
) -> int:
    """:func:`record_root_evaluations` on the store: each result attached to its trace's
    root span, in one transaction; how many were attached."""
    for index, (_, name, score, label, explanation) in enumerate(results):
        _check_result(name, score, label, explanation, f"results.{index}.")
    ws = workspace or current()
    by_trace: dict[str, list[dict[str, Any]]] = {}
    now = time.time_ns()
    for trace_id, name, score, label, explanation in results:
        by_trace.setdefault(trace_id, []).append(
            {
                "name": EVALUATION_EVENT,
                "time_ns": now,
                "attributes": _evaluation_attributes(name, score, label, explanation),
            }
        )
    attached = 0
    with ws.store.write() as conn:
        ids = list(by_trace)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            roots = conn.execute(
                select(spans.c.trace_id, spans.c.span_id, spans.c.events)
                .join(
                    traces,
                    (traces.c.id == spans.c.trace_id) & (traces.c.root_span_id == spans.c.span_id),
                )
                .where(spans.c.trace_id.in_(chunk))
            ).all()
            for root in roots:
                added = by_trace[root.trace_id]
                conn.execute(
                    spans.update()
                    .where(spans.c.trace_id == root.trace_id, spans.c.span_id == root.span_id)
                    .values(events=[*root.events, *added])
                )
                attached += len(added)
    return attached


def to_dataset(
    name: str,
    *,
    trace_name: str | None = None,
    status: str | None = None,
    since_ms: int | None = None,
    session_id: str | None = None,
    limit: int = 10_000,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """Register recorded traces as a dataset version, one row per trace, oldest first: an
    evaluation dataset made of what really happened.

    Columns: ``trace_id``, ``name``, ``started_at``, ``status``, ``duration_ms``, tokens and
    ``cost``; ``session_id`` and ``user_id`` where traces have them; a flow's inputs and
    outputs as ``inputs.*`` and ``outputs.*``; a bare model call's last user message and
    answer as ``inputs.question`` and ``outputs.answer``; and each evaluation result on the
    root span as ``eval.NAME``. Texts are what the trace kept: already redacted, and missing
    when content capture was off.
    """
    import pandas as pd

    from cauce.data.assets import register

    ws = workspace or current()
    flush(ws)
    rows = trace_rows(
        trace_name=trace_name,
        status=status,
        since_ms=since_ms,
        session_id=session_id,
        limit=limit,
        workspace=ws,
    )
    if not rows:
        raise NotFound("no traces match", hint="cauce traces list shows what is recorded")
    return register(
        name,
        pd.DataFrame(rows),
        description=f"{len(rows)} traces turned into a dataset",
        allow_schema_change=True,
        workspace=ws,
    )


@operation("GET /trace-rows")
def trace_rows(
    *,
    trace_name: str | None = None,
    status: str | None = None,
    since_ms: int | None = None,
    session_id: str | None = None,
    limit: int = 10_000,
    workspace: Workspace | None = None,
) -> list[dict[str, Any]]:
    """Stored traces as the rows of :func:`to_dataset`, oldest first (a session's: its
    conversation, turn by turn)."""
    ws = workspace or current()
    check_limit(limit)
    if since_ms is not None:
        check_int(since_ms, "since_ms")
    # Within a millisecond, by the root span's ns: a conversation's turns in the order taken.
    order = (traces.c.started_at, _root.c.started_ns, traces.c.id)
    query = _with_root(_root.c.attributes).order_by(*order).limit(limit)
    if trace_name is not None:
        query = query.where(traces.c.name == trace_name)
    if status is not None:
        query = query.where(traces.c.status == status)
    if since_ms is not None:
        query = query.where(traces.c.started_at >= since_ms)
    if session_id is not None:
        query = query.where(traces.c.session_id == session_id)
    with ws.store.read() as conn:
        found = conn.execute(query).all()
    rows = []
    for row in found:
        record: dict[str, Any] = {
            "trace_id": row.id,
            "name": row.name,
            "started_at": row.started_at,
            "status": row.status,
            "duration_ms": _duration_ms(row),
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "cost": row.cost,
        }
        for key in ("session_id", "user_id"):
            if getattr(row, key) is not None:
                record[key] = getattr(row, key)
        if row.attributes is not None:  # the root span is stored
            record.update(_content_columns(row.attributes))
            for event in row.events:
                a = event["attributes"]
                if event["name"] == EVALUATION_EVENT and "gen_ai.evaluation.score.value" in a:
                    record[f"eval.{a['gen_ai.evaluation.name']}"] = a[
                        "gen_ai.evaluation.score.value"
                    ]
        rows.append(record)
    return rows


def _check_result(
    name: str, score: float | None, label: str | None, explanation: str | None, where: str
) -> None:
    """An evaluation result's fields, checked before a transaction that stores them."""
    for field_name, value in (("label", label), ("explanation", explanation)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{where}{field_name}: text", details={"field": where + field_name})
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}name: a non-empty text", details={"field": where + "name"})
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise InvalidInput(f"{where}score: a number", details={"field": where + "score"})


def _content_columns(attributes: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, prefix in (("cauce.input", "inputs"), ("cauce.output", "outputs")):
        value = _json(attributes.get(key))
        if isinstance(value, dict):
            found.update({f"{prefix}.{k}": _cell(v) for k, v in value.items()})
    messages = _json(attributes.get("gen_ai.input.messages"))
    if isinstance(messages, list):
        users = [
            m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"
        ]
        if users:
            found.setdefault("inputs.question", users[-1])
    answer = _json(attributes.get("gen_ai.output.messages"))
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        found.setdefault("outputs.answer", answer[0].get("content"))
    return found


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _cell(value: Any) -> Any:
    return (
        value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)
    )


def _require_trace(conn: Any, trace_id: str) -> Any:
    text = trace_id.lower()
    if len(text) < 8 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(f"a trace is named by its id (8 to 32 hex characters), not {trace_id!r}")
    # A whole id is looked up by its key (a prefix is a LIKE the index may not answer).
    named = traces.c.id == text if len(text) == 32 else traces.c.id.startswith(text)
    rows = conn.execute(_with_root().where(named).limit(2)).all()
    if not rows:
        raise NotFound(f"no trace {trace_id}", hint="cauce traces list shows the recent ones")
    if len(rows) > 1:
        raise InvalidInput(f"trace id prefix {trace_id} names several traces: give more of it")
    return rows[0]


_root = spans.alias("root")


def _with_root(*columns: Any) -> Select[Any]:
    """The traces with their root span's times in ns (the summary keeps whole ms: a trace
    faster than a millisecond would read 0), its events and its ``columns``; None for a
    summary sent without its spans."""
    return select(
        traces, _root.c.started_ns, _root.c.ended_ns, _root.c.events, *columns
    ).select_from(
        traces.outerjoin(
            _root, and_(_root.c.trace_id == traces.c.id, _root.c.span_id == traces.c.root_span_id)
        )
    )


def _duration_ms(row: Any) -> float:
    if row.started_ns is None:
        return float(row.ended_at - row.started_at)
    return float((row.ended_ns - row.started_ns) / 1e6)


def _trace_summary(row: Any) -> TraceSummary:
    return TraceSummary(
        id=row.id,
        name=row.name,
        started_at=row.started_at,
        duration_ms=_duration_ms(row),
        status=row.status,
        span_count=row.span_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
        session_id=row.session_id,
        user_id=row.user_id,
        scores=_scores(row.events or []),
    )


def _scores(events: list[dict[str, Any]]) -> dict[str, float | str]:
    """The evaluation results on a root span, the latest of each name: its score, or its
    label when it has no score."""
    found: dict[str, float | str] = {}
    for event in events:
        a = event["attributes"]
        if event["name"] == EVALUATION_EVENT:
            value = a.get("gen_ai.evaluation.score.value", a.get("gen_ai.evaluation.score.label"))
            if value is not None:
                found[a["gen_ai.evaluation.name"]] = value
    return found


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
