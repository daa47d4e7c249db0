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

One module a concept: :mod:`~cauce.genai.tracing.spans` makes spans (and the exporter that
stores them), :mod:`~cauce.genai.tracing.records` checks and stores finished ones,
:mod:`~cauce.genai.tracing.reading` lists traces, sessions and users,
:mod:`~cauce.genai.tracing.scores` puts evaluations and feedback on stored traces,
:mod:`~cauce.genai.tracing.deletion` deletes them, and
:mod:`~cauce.genai.tracing.datasets` makes them a dataset; the attribute names they share are
in :mod:`~cauce.genai.tracing.attributes`.

Example::

    with cauce.tracing.span("answer question", operation="invoke_agent") as span:
        span.content("cauce.input", question)
        ...
    cauce.tracing.get_trace(span.trace_id)
"""

from cauce.genai.tracing.datasets import to_dataset, trace_rows
from cauce.genai.tracing.deletion import delete_traces
from cauce.genai.tracing.reading import (
    SessionSummary,
    SpanRecord,
    Trace,
    TraceSummary,
    UserSummary,
    get_trace,
    list_sessions,
    list_traces,
    list_users,
    query_sessions,
    query_traces,
    query_users,
    read_trace,
    trace_names,
)
from cauce.genai.tracing.records import (
    FinishedSpan,
    FinishedTrace,
    link_prompts,
    link_traces_to_run,
    record_spans,
)
from cauce.genai.tracing.scores import (
    ScoreSummary,
    add_evaluation,
    add_expectation,
    add_root_evaluations,
    list_scores,
    log_expectation,
    log_feedback,
    query_scores,
    record_evaluation,
    record_root_evaluations,
)
from cauce.genai.tracing.spans import (
    Span,
    flush,
    send_root_spans_to,
    session,
    set_redactor,
    span,
    start,
    tagged,
)
from cauce.genai.tracing.tags import delete_trace_tag, set_trace_tags

__all__ = [
    "FinishedSpan",
    "FinishedTrace",
    "ScoreSummary",
    "SessionSummary",
    "Span",
    "SpanRecord",
    "Trace",
    "TraceSummary",
    "UserSummary",
    "add_evaluation",
    "add_expectation",
    "add_root_evaluations",
    "delete_trace_tag",
    "delete_traces",
    "flush",
    "get_trace",
    "link_prompts",
    "link_traces_to_run",
    "list_scores",
    "list_sessions",
    "list_traces",
    "list_users",
    "log_expectation",
    "log_feedback",
    "query_scores",
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
    "set_trace_tags",
    "span",
    "start",
    "tagged",
    "to_dataset",
    "trace_names",
    "trace_rows",
]
