"""Making spans: OpenTelemetry's tracer per workspace, the spans Cauce's calls open, the
session and user they belong to, and the exporter that writes them to the store."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.config import load_object
from cauce.errors import InvalidInput
from cauce.genai.tracing.attributes import (
    COST,
    EVALUATION_EVENT,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    RUN,
    SESSION,
    TRACE_TAG,
    USER,
    attribute_value,
    check_evaluation_name,
    check_id,
    evaluation_attributes,
    id_text,
)
from cauce.genai.tracing.records import FinishedSpan, FinishedTrace, record_spans
from cauce.validation import check_tags
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Span as OtelSpan

MAX_OPEN_TRACES = 100_000

_lock = threading.Lock()
_tracings: dict[int, _Tracing] = {}
_sinks: dict[int, tuple[Workspace, Callable[[FinishedSpan, FinishedTrace], None]]] = {}
_redactor: Callable[[str], str] | None = None
# The session and user attributes every span made here gets (see ``session``).
_belongs: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("cauce_belongs", default=())


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
        self._otel.set_attribute(key, attribute_value(value))

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
        check_evaluation_name(name, "name")
        self._otel.add_event(
            EVALUATION_EVENT, evaluation_attributes(name, score, label, explanation)
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
    root = _at_root()
    with tracing.tracer.start_as_current_span(
        name, kind=_kind(kind), record_exception=False, set_status_on_exception=False
    ) as otel:
        wrapped = Span(otel, tracing.capture, tracing.redact)
        wrapped.set(OPERATION, operation)
        for key, value in _given(root, attributes).items():
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
    root = _at_root()
    otel: Any
    if sink is not None and sink[0] is ws and not ws.settings.otlp_endpoint and root:
        otel = _LocalSpan(name, kind, sink[1])
    else:
        otel = tracing.tracer.start_span(name, kind=_kind(kind))
    wrapped = Span(otel, tracing.capture, tracing.redact)
    wrapped.set(OPERATION, operation)
    for key, value in _given(root, attributes).items():
        wrapped.set(key, value)
    return wrapped


def _given(root: bool, attributes: dict[str, Any] | None) -> dict[str, Any]:
    """The attributes a new span starts with: its session's, user's and tags', the run a root
    span is made in (while one is active), then the caller's."""
    found = dict(_belongs.get())
    if root:
        from cauce.tracking.fluent import active_run

        run = active_run()
        if run is not None:
            found[RUN] = run.run_id
    return {**found, **(attributes or {})}


@contextmanager
def session(session_id: str | None = None, *, user_id: str | None = None) -> Iterator[None]:
    """Traces made in this block belong to the session and the user given (a conversation,
    the person it is with): their spans carry ``session.id`` and ``user.id``, and
    :func:`list_traces` and :func:`list_sessions` find them by either."""
    given = {SESSION: session_id, USER: user_id}
    for key, value in given.items():
        if value is not None:
            check_id(value, "session_id" if key == SESSION else "user_id")
    if session_id is None and user_id is None:
        raise InvalidInput("give a session_id, a user_id or both", details={"field": "session_id"})
    merged = {**dict(_belongs.get()), **{k: v for k, v in given.items() if v is not None}}
    token = _belongs.set(tuple(merged.items()))
    try:
        yield
    finally:
        _belongs.reset(token)


@contextmanager
def tagged(values: Mapping[str, Any]) -> Iterator[None]:
    """Traces made in this block carry these tags (an environment, an experiment's arm): their
    spans carry ``cauce.trace.tag.KEY``, and :func:`list_traces` finds them by ``tag``."""
    checked = check_tags(values)
    if not checked:
        raise InvalidInput("give at least one tag", details={"field": "values"})
    given = {TRACE_TAG + key: value for key, value in checked.items()}
    token = _belongs.set(tuple({**dict(_belongs.get()), **given}.items()))
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


def content_policy(ws: Workspace) -> tuple[bool, Callable[[str], str]]:
    """Whether the workspace's spans keep content, and the function every text they keep goes
    through: ``CAUCE_TRACE_REDACT``'s hook, then :func:`set_redactor`'s (as set when it runs)."""
    name = ws.settings.trace_redact
    hook = load_object(name, what="CAUCE_TRACE_REDACT hook") if name else None

    def redact(text: str) -> str:
        if hook is not None:
            text = str(hook(text))
        if _redactor is not None:
            text = str(_redactor(text))
        return text

    return ws.settings.trace_content, redact


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
        self.capture, self.redact = content_policy(ws)


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
        session_id=id_text(root.attributes.get(SESSION, session_id)),
        user_id=id_text(root.attributes.get(USER, user_id)),
    )
