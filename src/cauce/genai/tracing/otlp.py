"""Spans other tracers send: OpenTelemetry's OTLP/HTTP trace requests (protobuf or JSON),
made finished spans and stored, with the summary of every trace they belong to.

Any OpenTelemetry SDK or Collector exports to ``cauce server``'s ``/v1/traces``; so do the
instrumentations that write OpenInference's attributes (Phoenix's) and MLflow's tracing with
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set. Their names for an operation, its token counts, its
cost, session and user are read as Cauce's own (``gen_ai.*``, ``session.id``, ``user.id``), so
the traces list, sessions, users and scores count them as Cauce's spans. Content is kept, left
out or redacted by the workspace's ``CAUCE_TRACE_CONTENT`` and ``CAUCE_TRACE_REDACT``, as for
spans made here.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from cauce.errors import BadRequest, NotSupported, UnsupportedMediaType
from cauce.genai.tracing.attributes import OPERATION, SESSION, USER, attribute_value
from cauce.genai.tracing.records import FinishedSpan, record_received_spans
from cauce.genai.tracing.spans import content_policy
from cauce.validation import load_json
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

PROTOBUF = ("application/x-protobuf", "application/protobuf")
JSON = "application/json"

_KINDS = {0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_ERROR = 2  # Status.STATUS_CODE_ERROR
_BIG = 2**63

# What other conventions call Cauce's attributes, in the order they are looked at.
_INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",  # GenAI conventions before 1.27, OpenLLMetry
    "llm.token_count.prompt",  # OpenInference
)
_OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
_COSTS = ("cauce.cost", "gen_ai.usage.cost", "llm.cost.total")
_SESSIONS = (SESSION, "gen_ai.conversation.id", "langfuse.session.id", "mlflow.trace.session")
_USERS = (USER, "langfuse.user.id", "mlflow.trace.user")
# OpenInference's span kinds and MLflow's span types, as GenAI operations.
_OPERATIONS = {
    "LLM": "chat",
    "CHAT_MODEL": "chat",
    "EMBEDDING": "embeddings",
    "RETRIEVER": "retrieval",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
}
_KIND_ATTRIBUTES = ("openinference.span.kind", "mlflow.spanType")

# Attributes and events that hold content (prompts, completions, documents, inputs, outputs).
_CONTENT = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "input.value",
        "output.value",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "cauce.input",
        "cauce.output",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "langfuse.trace.input",
        "langfuse.trace.output",
    }
)
_CONTENT_PREFIXES = (
    "gen_ai.prompt.",  # OpenLLMetry: gen_ai.prompt.0.content
    "gen_ai.completion.",
    "llm.input_messages.",  # OpenInference
    "llm.output_messages.",
    "llm.prompts.",
    "llm.prompt_template.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
)
_CONTENT_EVENTS = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
    }
)


def record_otlp(body: bytes, content_type: str, *, workspace: Workspace | None = None) -> int:
    """Store the spans of an OTLP/HTTP trace request (``content_type`` protobuf or JSON),
    all or none; the number of spans in it."""
    ws = workspace or current()
    request = parse_request(body, content_type)
    capture, redact = content_policy(ws)
    found = list(finished_spans(request, capture, redact))
    record_received_spans(found, workspace=ws)
    return len(found)


def parse_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` from its protobuf bytes or its JSON (whose ids are
    hex, as OTLP/JSON writes them)."""
    try:
        from google.protobuf import json_format
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        raise NotSupported(
            "receiving OTLP traces needs opentelemetry-proto on the server",
            hint="pip install 'cauce[genai]' where the server runs",
        ) from None
    request = ExportTraceServiceRequest()
    if content_type in PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None
        return request
    if content_type != JSON:
        raise UnsupportedMediaType(f"an OTLP body is {PROTOBUF[0]} or {JSON}, not {content_type}")
    document = load_json(body)
    if not isinstance(document, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(document).__name__}")
    _ids_as_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    return request


def finished_spans(
    request: ExportTraceServiceRequest, capture: bool, redact: Callable[[str], str]
) -> Iterator[FinishedSpan]:
    """Each span of the request as Cauce stores it; BadRequest names the first bad field by
    its place in the request (``resourceSpans.0.scopeSpans.1.spans.4.spanId``)."""
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        service = resource.get("service.name")
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for n, one in enumerate(scope_spans.spans):
                where = f"resourceSpans.{r}.scopeSpans.{s}.spans.{n}"
                yield _span(one, where, service, capture, redact)


def _span(
    one: Any,
    where: str,
    service: Any,
    capture: bool,
    redact: Callable[[str], str],
) -> FinishedSpan:
    trace_id = _id(one.trace_id, 16, f"{where}.traceId")
    span_id = _id(one.span_id, 8, f"{where}.spanId")
    parent_id = _id(one.parent_span_id, 8, f"{where}.parentSpanId") if one.parent_span_id else None
    started, ended = one.start_time_unix_nano, one.end_time_unix_nano
    for name, value in (("startTimeUnixNano", started), ("endTimeUnixNano", ended)):
        if not 0 < value < _BIG:
            raise BadRequest(
                f"{where}.{name}: {value} is not a time in nanoseconds since 1970",
                details={"field": f"{where}.{name}"},
            )
    if ended < started:
        raise BadRequest(
            f"{where}.endTimeUnixNano is before its startTimeUnixNano",
            details={"field": f"{where}.endTimeUnixNano"},
        )
    attributes = _kept(_attributes(one.attributes), capture, redact)
    if service is not None:
        attributes.setdefault("service.name", service)
    for key, aliases in ((SESSION, _SESSIONS), (USER, _USERS)):
        found = _first(attributes, aliases)
        if found is not None:
            attributes.setdefault(key, str(_unquoted(found)))
    events = []
    for event in one.events:
        found = _attributes(event.attributes)
        if event.name not in _CONTENT_EVENTS:
            found = _kept(found, capture, redact)
        elif capture:  # a message event: every attribute is content
            found = {key: _redacted(value, redact) for key, value in found.items()}
        else:
            continue
        events.append({"name": event.name, "time_ns": event.time_unix_nano, "attributes": found})
    input_tokens, output_tokens = _tokens(attributes)
    operation = _operation(attributes)
    return FinishedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=one.name,
        kind=_KINDS.get(one.kind, "internal"),
        operation=operation if operation is not None and len(operation) <= 32 else None,
        started_ns=started,
        ended_ns=ended,
        status="error" if one.status.code == _ERROR else "ok",
        status_message=one.status.message or None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=_number(_first(attributes, _COSTS)),
        attributes=attributes,
        events=events,
    )


def _id(raw: bytes, size: int, field_name: str) -> str:
    if len(raw) != size or not any(raw):
        raise BadRequest(
            f"{field_name}: {size} bytes, not all zero ({2 * size} hex characters in JSON); "
            f"got {len(raw)} bytes",
            details={"field": field_name},
        )
    return raw.hex()


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        value = _value(pair.value)
        if value is not None:
            found[pair.key] = attribute_value(value)
    return found


def _value(any_value: Any) -> Any:
    """An OTLP ``AnyValue`` as Python: text, bool, int, float, bytes as hex, lists, dicts."""
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    if which == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, which)


def _kept(
    attributes: dict[str, Any], capture: bool, redact: Callable[[str], str]
) -> dict[str, Any]:
    """The attributes a workspace keeps: content left out, or redacted."""
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        if not (key in _CONTENT or key.startswith(_CONTENT_PREFIXES)):
            kept[key] = value
        elif capture:
            kept[key] = _redacted(value, redact)
    return kept


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact(v) if isinstance(v, str) else v for v in value]
    return value


def _first(attributes: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if attributes.get(key) is not None:
            return attributes[key]
    return None


def _unquoted(value: Any) -> Any:
    """MLflow writes every attribute as JSON (a text ``"LLM"``, quotes included)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _operation(attributes: dict[str, Any]) -> str | None:
    named = attributes.get(OPERATION)
    if isinstance(named, str):
        return named
    kind = _unquoted(_first(attributes, _KIND_ATTRIBUTES))
    return _OPERATIONS.get(kind) if isinstance(kind, str) else None


def _tokens(attributes: dict[str, Any]) -> tuple[int | None, int | None]:
    inputs = _count(_first(attributes, _INPUT_TOKENS))
    outputs = _count(_first(attributes, _OUTPUT_TOKENS))
    usage = attributes.get("mlflow.chat.tokenUsage")  # MLflow: a JSON object of both
    if (inputs is None or outputs is None) and isinstance(usage, str):
        try:
            counts = json.loads(usage)
        except ValueError:
            counts = None
        if isinstance(counts, dict):
            inputs = inputs if inputs is not None else _count(counts.get("input_tokens"))
            outputs = outputs if outputs is not None else _count(counts.get("output_tokens"))
    return inputs, outputs


def _count(value: Any) -> int | None:
    number = _number(value)
    if number is None or number != int(number) or not 0 <= number < _BIG:
        return None
    return int(number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _ids_as_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping reads base64:
    rewritten in place, so one parser reads both encodings."""
    for r, resource_spans in enumerate(_items(document, "resourceSpans", "resource_spans")):
        for s, scope_spans in enumerate(_items(resource_spans, "scopeSpans", "scope_spans")):
            for n, one in enumerate(_items(scope_spans, "spans")):
                where = f"resourceSpans.{r}.scopeSpans.{s}.spans.{n}"
                _hex_fields(one, where)
                for k, link in enumerate(_items(one, "links")):
                    _hex_fields(link, f"{where}.links.{k}")


def _items(parent: Any, *names: str) -> list[Any]:
    if not isinstance(parent, dict):
        return []
    for name in names:
        found = parent.get(name)
        if isinstance(found, list):
            return found
    return []


def _hex_fields(one: Any, where: str) -> None:
    if not isinstance(one, dict):
        return
    for json_name, name in (
        ("traceId", "trace_id"),
        ("spanId", "span_id"),
        ("parentSpanId", "parent_span_id"),
    ):
        for key in (json_name, name):
            value = one.get(key)
            if isinstance(value, str) and value:
                try:
                    one[key] = binascii.b2a_base64(bytes.fromhex(value), newline=False).decode()
                except ValueError:
                    raise BadRequest(
                        f"{where}.{json_name}: hex characters, not {value!r}",
                        details={"field": f"{where}.{json_name}"},
                    ) from None
