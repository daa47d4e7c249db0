"""Stored spans as MLflow's client reads them back: MLflow's ``Trace`` message holds
OpenTelemetry's spans, written here in protobuf's JSON. Each attribute is sent as the value
MLflow's own span holds: a text MLflow wrote as JSON (its inputs, outputs, span type) as the
value it encodes, any other text as it is. A span made by Cauce or another tracer gets MLflow's
names for its input, output and type where it has none of MLflow's, so ``span.inputs``,
``span.span_type`` and a trace's ``request`` and ``response`` read the same whoever made it.

The evaluation results on the spans (``log_feedback``'s, evaluators') and their expectations
(``log_expectation``'s) are the trace's assessments, of a source Cauce does not keep: the
latest of a name on a span the valid one (a corrected feedback replaces the one before), one
on the root span the trace's.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from cauce.genai.tracing.attributes import (
    EVALUATION_EVENT,
    EXPECTATION_EVENT,
    EXPECTATION_NAME,
    EXPECTATION_VALUE,
)
from cauce.genai.tracing.reading import SpanRecord

_KINDS = {
    "internal": "SPAN_KIND_INTERNAL",
    "server": "SPAN_KIND_SERVER",
    "client": "SPAN_KIND_CLIENT",
    "producer": "SPAN_KIND_PRODUCER",
    "consumer": "SPAN_KIND_CONSUMER",
}
# Cauce's GenAI operations as MLflow's span types.
_SPAN_TYPES = {
    "chat": "CHAT_MODEL",
    "text_completion": "LLM",
    "generate_content": "LLM",
    "embeddings": "EMBEDDING",
    "retrieval": "RETRIEVER",
    "execute_tool": "TOOL",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
}
# MLflow's name for a span's input and output, then the names Cauce and OpenInference use.
_INPUTS = ("mlflow.spanInputs", "cauce.input", "input.value")
_OUTPUTS = ("mlflow.spanOutputs", "cauce.output", "output.value")
_SPAN_TYPE = "mlflow.spanType"
_BIG = 2**63
_NOT_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def otlp_span(trace_id: str, span: SpanRecord) -> dict[str, Any]:
    """A stored span of trace ``trace_id`` as OpenTelemetry's ``Span``, in protobuf's JSON."""
    attributes = dict(span.attributes)
    for names in (_INPUTS, _OUTPUTS):
        found = next((attributes[n] for n in names if n in attributes), None)
        if found is not None:
            attributes.setdefault(names[0], found)
    if _SPAN_TYPE not in attributes and span.operation in _SPAN_TYPES:
        attributes[_SPAN_TYPE] = _SPAN_TYPES[span.operation]
    status: dict[str, Any] = {"code": "STATUS_CODE_OK"}
    if span.status == "error":
        status = {"code": "STATUS_CODE_ERROR", "message": span.status_message or ""}
    found_span: dict[str, Any] = {
        "trace_id": _bytes(trace_id),
        "span_id": _bytes(span.span_id),
        "name": span.name,
        "kind": _KINDS.get(span.kind, "SPAN_KIND_INTERNAL"),
        "start_time_unix_nano": str(span.started_ns),
        "end_time_unix_nano": str(span.started_ns + round(span.duration_ms * 1_000_000)),
        "attributes": _pairs(attributes, decode=True),
        "events": [
            {
                "name": event.get("name", ""),
                "time_unix_nano": str(event.get("time_ns", 0)),
                "attributes": _pairs(event.get("attributes") or {}, decode=False),
            }
            for event in span.events
        ],
        "status": status,
    }
    if span.parent_id is not None:
        found_span["parent_span_id"] = _bytes(span.parent_id)
    return found_span


def _bytes(hex_id: str) -> str:
    """An id's bytes as protobuf's JSON writes them: base64."""
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def _pairs(attributes: dict[str, Any], *, decode: bool) -> list[dict[str, Any]]:
    return [
        {"key": key, "value": _any_value(_mlflow_value(value) if decode else value)}
        for key, value in attributes.items()
    ]


def _mlflow_value(value: Any) -> Any:
    """The value MLflow's span holds for a stored attribute: a text that is the JSON of a
    text, a list or a mapping is that value (MLflow's client writes its attributes as JSON,
    and its server reads them back so), any other value is itself."""
    if not isinstance(value, str):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, (str, list, dict)) else value


def _any_value(value: Any) -> dict[str, Any]:
    """A value as OpenTelemetry's ``AnyValue``, in protobuf's JSON (None: no value)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int) and -_BIG <= value < _BIG:
        return {"int_value": str(value)}
    if isinstance(value, float):
        return {"double_value": value if math.isfinite(value) else _NOT_FINITE[str(value)]}
    if isinstance(value, (list, tuple)):
        return {"array_value": {"values": [_any_value(v) for v in value]}}
    if isinstance(value, dict):
        pairs = [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]
        return {"kvlist_value": {"values": pairs}}
    return {"string_value": str(value)}


def assessments(trace_id: str, spans: list[SpanRecord]) -> list[dict[str, Any]]:
    """The evaluation results and expectations on a trace's spans as MLflow's
    ``Assessment`` feedback and expectations."""
    from google.protobuf.timestamp_pb2 import Timestamp

    found = []
    for span in spans:
        named = [(e, name) for e in span.events if (name := _name_of(e)) is not None]
        latest = {(e["name"], name): e for e, name in named}
        for event, name in named:
            at = Timestamp()
            at.FromNanoseconds(int(event.get("time_ns", 0)))
            assessment: dict[str, Any] = {
                "assessment_name": name,
                "trace_id": f"tr-{trace_id}",
                "source": {"source_type": "SOURCE_TYPE_UNSPECIFIED"},
                "create_time": at.ToJsonString(),
                "last_update_time": at.ToJsonString(),
                "valid": latest[(event["name"], name)] is event,
                **_assessed(event["attributes"]),
            }
            if span.parent_id is not None:
                assessment["span_id"] = span.span_id
            found.append(assessment)
    return found


def _name_of(event: dict[str, Any]) -> str | None:
    """The name of an evaluation result or an expectation (None: another event)."""
    if event.get("name") == EVALUATION_EVENT:
        return str(event["attributes"].get("gen_ai.evaluation.name", ""))
    if event.get("name") == EXPECTATION_EVENT:
        return str(event["attributes"].get(EXPECTATION_NAME, ""))
    return None


def _assessed(attributes: dict[str, Any]) -> dict[str, Any]:
    """An assessment's value: an expectation's as MLflow serializes it, a result's as its
    feedback, with its rationale and an evaluator's label of its own as metadata."""
    if EXPECTATION_VALUE in attributes:
        serialized = {"serialization_format": "JSON_FORMAT", "value": attributes[EXPECTATION_VALUE]}
        return {"expectation": {"serialized_value": serialized}}
    score = attributes.get("gen_ai.evaluation.score.value")
    label = attributes.get("gen_ai.evaluation.score.label")
    value = _feedback_value(score, label)
    found: dict[str, Any] = {"feedback": {"value": value}}
    if attributes.get("gen_ai.evaluation.explanation"):
        found["rationale"] = attributes["gen_ai.evaluation.explanation"]
    if score is not None and label is not None and not isinstance(value, bool):
        found["metadata"] = {"label": label}
    return found


def _feedback_value(score: float | None, label: str | None) -> Any:
    """A result's value as MLflow's feedback held it: yes or no, a number, a text, or the
    list or mapping its label is the JSON of; a score with a label of its own is the score."""
    if label in ("true", "false") and score == float(label == "true"):
        return label == "true"
    if score is not None:
        return score if math.isfinite(score) else _NOT_FINITE[str(score)]
    decoded = _mlflow_value(label)
    return decoded if isinstance(decoded, (list, dict)) else label
