"""MLflow's tracing calls. MLflow 3.4 and later send a trace's spans over OTLP to
``/v1/traces`` (:mod:`cauce.server.otlp`), then, when its root span ends, the trace's info
(``StartTraceV3``): its session and user are kept on the trace's summary, and the answer says
the spans are in the tracking store already, so the client uploads no copy of them.

A prompt version the application loaded inside a trace (``mlflow.genai.load_prompt``) is
linked to it: the span names it (``mlflow.linkedPrompts``), and the client links it again
through the trace's info (``GetTraceInfoV3``), ``LinkPromptsToTrace`` and the trace's tag of
that name; all three are lineage edges ``prompt_version → trace``. The trace's other tags
(``mlflow.update_current_trace(tags=...)``, ``set_trace_tag``) are its Cauce tags; MLflow's
own (``mlflow.*``) are not kept.

``mlflow.log_feedback`` (``CreateAssessment``) is Cauce's feedback: an evaluation result on
the trace's root span, or on the span it names. Cauce keeps no assessment ids (a corrected
feedback is a newer result of the same name), so reading, updating or deleting one by its id,
and expectations (ground truth, which Cauce keeps in evaluation datasets), are not served.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from cauce.errors import InvalidInput
from cauce.genai.tracing.attributes import MLFLOW_LINKED_PROMPTS
from cauce.genai.tracing.reading import read_trace
from cauce.genai.tracing.records import link_prompts, record_trace_info
from cauce.genai.tracing.scores import add_evaluation, log_feedback
from cauce.genai.tracing.tags import delete_trace_tag as remove_trace_tag
from cauce.genai.tracing.tags import set_trace_tags
from cauce.server.mlflow.wire import Params, unsupported
from cauce.workspace import Workspace

# The MLflow server whose API these routes answer (``GET /version``): a client that reads
# 3.4 or later sends its spans over OTLP, which Cauce receives.
MLFLOW_VERSION = "3.18.0"

_TRACE_ID = re.compile(r"^tr-(?P<hex>[0-9a-f]{32})$")
_SPANS_LOCATION = "mlflow.trace.spansLocation"


def start_trace(ws: Workspace, p: Params) -> dict[str, Any]:
    """``StartTraceV3``: a finished trace's info."""
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp

    trace = p.values.get("trace")
    info = trace.get("trace_info") if isinstance(trace, dict) else None
    if not isinstance(info, dict):
        raise InvalidInput(
            "trace.trace_info: the trace's info, an object", details={"field": "trace"}
        )
    trace_id = _trace_hex(info.get("trace_id"))
    started, took = Timestamp(), Duration()
    try:
        started.FromJsonString(str(info.get("request_time") or "1970-01-01T00:00:00Z"))
        took.FromJsonString(str(info.get("execution_duration") or "0s"))
    except ValueError as exc:
        raise InvalidInput(
            f"request_time and execution_duration: a time and a duration, as protobuf's JSON "
            f"writes them ({exc})",
            details={"field": "request_time"},
        ) from None
    metadata = info.get("trace_metadata") or {}
    tags = info.get("tags") or {}
    if not isinstance(tags, dict):
        raise InvalidInput("trace.trace_info.tags: an object", details={"field": "tags"})
    record_trace_info(
        trace_id,
        name=str(tags.get("mlflow.traceName") or "trace"),
        started_at=started.ToMilliseconds(),
        ended_at=started.ToMilliseconds() + max(0, took.ToMilliseconds()),
        status="error" if info.get("state") == "ERROR" else "ok",
        session_id=metadata.get("mlflow.trace.session"),
        user_id=metadata.get("mlflow.trace.user"),
        tags={k: v for k, v in tags.items() if not str(k).startswith("mlflow.")},
        workspace=ws,
    )
    return {"trace": {"trace_info": {**info, "tags": {**tags, _SPANS_LOCATION: "TRACKING_STORE"}}}}


def get_trace_info(ws: Workspace, p: Params) -> dict[str, Any]:
    """``GetTraceInfoV3``: a stored trace's info, the prompt versions it used as MLflow's
    ``mlflow.linkedPrompts`` tag. Cauce's traces belong to the workspace, not to an experiment:
    the location is the default experiment."""
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp

    trace_id = _trace_hex(p.values.get("trace_id"))
    found = read_trace(trace_id, with_spans=False, workspace=ws)
    summary = found.summary
    started, took = Timestamp(), Duration()
    started.FromMilliseconds(summary.started_at)
    took.FromNanoseconds(int(summary.duration_ms * 1_000_000))
    metadata = {
        key: value
        for key, value in (
            ("mlflow.trace.session", summary.session_id),
            ("mlflow.trace.user", summary.user_id),
        )
        if value is not None
    }
    tags = {**summary.tags, "mlflow.traceName": summary.name, _SPANS_LOCATION: "TRACKING_STORE"}
    if found.prompts:
        tags[MLFLOW_LINKED_PROMPTS] = json.dumps(
            [{"name": name, "version": version} for name, version in map(_prompt_of, found.prompts)]
        )
    info = {
        "trace_id": f"tr-{summary.id}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": "0"},
        },
        "request_time": started.ToJsonString(),
        "execution_duration": took.ToJsonString(),
        "state": "ERROR" if summary.status == "error" else "OK",
        "trace_metadata": metadata,
        "tags": tags,
    }
    return {"trace": {"trace_info": info}}


def batch_get_traces(ws: Workspace, p: Params) -> dict[str, Any]:
    """``BatchGetTraces`` (``mlflow.get_trace``, ``search_traces``): not served."""
    raise unsupported(
        "reading traces' spans back through MLflow (get_trace, search_traces)",
        ": cauce traces show, the UI's trace page or cauce.tracing.get_trace read them",
    )


def link_prompts_to_trace(ws: Workspace, p: Params) -> dict[str, Any]:
    """``LinkPromptsToTrace``: the prompt versions a trace used."""
    trace_id = _trace_hex(p.values.get("trace_id"))
    given = p.values.get("prompt_versions") or []
    if not isinstance(given, list) or not all(isinstance(v, dict) for v in given):
        raise InvalidInput(
            "prompt_versions: a list of {name, version}", details={"field": "prompt_versions"}
        )
    link_prompts(trace_id, [_ref(v) for v in given], workspace=ws)
    return {}


def set_trace_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    """``SetTraceTag``: a tag of the trace; ``mlflow.linkedPrompts`` names the prompt versions
    it used."""
    key = p.text("key", required=True)
    trace_id = _trace_hex(p.values.get("request_id") or p.values.get("trace_id"))
    if key != MLFLOW_LINKED_PROMPTS:
        set_trace_tags(trace_id, {key: p.text("value", default="")}, workspace=ws)
        return {}
    try:
        entries = json.loads(p.text("value", default="[]"))
    except ValueError:
        entries = None
    if not isinstance(entries, list) or not all(isinstance(v, dict) for v in entries):
        raise InvalidInput(
            f"value: the {MLFLOW_LINKED_PROMPTS} tag is a JSON list of {{name, version}}",
            details={"field": "value"},
        )
    link_prompts(trace_id, [_ref(v) for v in entries], workspace=ws)
    return {}


def delete_trace_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    """``DeleteTraceTag``."""
    trace_id = _trace_hex(p.values.get("request_id") or p.values.get("trace_id"))
    remove_trace_tag(trace_id, p.text("key", required=True), workspace=ws)
    return {}


def _ref(entry: dict[str, Any]) -> str:
    return f"prompts:/{entry.get('name')}/{entry.get('version')}"


def _prompt_of(ref: str) -> tuple[str, str]:
    name, _, version = ref.removeprefix("prompts:/").rpartition("/")
    return name, version


def create_assessment(ws: Workspace, p: Params) -> dict[str, Any]:
    """``CreateAssessment``: a feedback on a trace, or on one of its spans."""
    trace_id = _trace_hex(p.values.get("trace_id"))
    assessment = p.values.get("assessment")
    if not isinstance(assessment, dict):
        raise InvalidInput("assessment: an object", details={"field": "assessment"})
    if "expectation" in assessment:
        raise unsupported(
            "expectations", ": Cauce keeps expected answers in evaluation datasets (cauce evals)"
        )
    feedback = assessment.get("feedback")
    if not isinstance(feedback, dict) or feedback.get("error"):
        raise InvalidInput(
            "assessment.feedback: a feedback with a value (one that failed has none to keep)",
            details={"field": "assessment.feedback"},
        )
    score, label = _score_and_label(feedback.get("value"))
    name = str(assessment.get("assessment_name") or "")
    rationale = assessment.get("rationale")
    span_id = assessment.get("span_id")
    if span_id:
        add_evaluation(trace_id, str(span_id), name, score, label, rationale, workspace=ws)
    else:
        log_feedback(trace_id, name, score, label, rationale, workspace=ws)
    return {"assessment": {**assessment, "assessment_id": f"a-{uuid.uuid4().hex}"}}


def _trace_hex(given: Any) -> str:
    """The OpenTelemetry trace id in MLflow's ``tr-<32 hex>``."""
    found = _TRACE_ID.match(str(given or ""))
    if found is None:
        raise InvalidInput(
            f"trace_id: 'tr-' and 32 hex characters (OpenTelemetry's trace id), not {given!r}",
            details={"field": "trace_id"},
        )
    return found["hex"]


def _score_and_label(value: Any) -> tuple[float | None, str | None]:
    """A feedback's value as Cauce keeps it: a number is its score, a text its label, yes or
    no both (1 or 0, ``true`` or ``false``), anything else its label as JSON."""
    if isinstance(value, bool):
        return float(value), str(value).lower()
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, str) and value:
        return None, value
    if value is None or value == "":
        raise InvalidInput(
            "assessment.feedback.value: a value", details={"field": "assessment.feedback.value"}
        )
    return None, json.dumps(value, sort_keys=True)


ROUTES: list[tuple[str, tuple[str, ...], Any]] = [
    ("/traces", ("POST",), start_trace),
    ("/traces/batchGet", ("GET",), batch_get_traces),
    ("/traces/{trace_id}", ("GET",), get_trace_info),
    ("/traces/{trace_id}/assessments", ("POST",), create_assessment),
]
"""Under ``/api/3.0/mlflow``."""

V2_ROUTES: list[tuple[str, tuple[str, ...], Any]] = [
    ("/traces/link-prompts", ("POST",), link_prompts_to_trace),
    ("/traces/{request_id}/tags", ("PATCH",), set_trace_tag),
    ("/traces/{request_id}/tags", ("DELETE",), delete_trace_tag),
]
"""Under ``/api/2.0/mlflow``, where MLflow's client sends these."""
