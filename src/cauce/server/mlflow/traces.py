"""MLflow's tracing calls. MLflow 3.4 and later send a trace's spans over OTLP to
``/v1/traces`` (:mod:`cauce.server.otlp`), then, when its root span ends, the trace's info
(``StartTraceV3``): its session, user and run are kept with the trace, which is filed under
the experiment it was sent to, and the answer says the spans are in the tracking store
already, so the client uploads no copy of them.

``mlflow.get_trace`` and ``mlflow.search_traces`` read stored traces back, with their spans
(:mod:`.spans`), whichever tracer sent them; a search's filter is what Cauce's traces list
filters by (name, status, start, a tag, session, user, the run a trace was made in).
``delete_traces`` deletes an experiment's traces, by id or by age. A trace filed under no
experiment (sent over OTLP alone, made by Cauce outside a run) is the default experiment's.

A prompt version the application loaded inside a trace (``mlflow.genai.load_prompt``) is
linked to it: the span names it (``mlflow.linkedPrompts``), and the client links it again
through the trace's info (``GetTraceInfoV3``), ``LinkPromptsToTrace`` and the trace's tag of
that name; all three are lineage edges ``prompt_version → trace``. The trace's other tags
(``mlflow.update_current_trace(tags=...)``, ``set_trace_tag``) are its Cauce tags; MLflow's
own (``mlflow.*``) are not kept.

``mlflow.log_feedback`` (``CreateAssessment``) is Cauce's feedback: an evaluation result on
the trace's root span, or on the span it names; ``mlflow.log_expectation`` its expectation
(ground truth ``to_dataset`` turns into evaluation data). ``LinkTracesToRun`` (what
``mlflow.genai.evaluate`` calls) links traces to a run. Cauce keeps no assessment ids (a
corrected feedback is a newer result of the same name), so reading, updating or deleting one
by its id is not served.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from cauce.errors import InvalidInput, NotFound
from cauce.genai.tracing.attributes import MLFLOW_LINKED_PROMPTS
from cauce.genai.tracing.deletion import delete_traces as remove_traces
from cauce.genai.tracing.reading import Trace, TraceSummary, list_traces, read_trace
from cauce.genai.tracing.records import link_prompts, record_trace_info
from cauce.genai.tracing.records import link_traces_to_run as link_traces
from cauce.genai.tracing.scores import add_evaluation, add_expectation, log_feedback
from cauce.genai.tracing.tags import delete_trace_tag as remove_trace_tag
from cauce.genai.tracing.tags import set_trace_tags
from cauce.server.mlflow.spans import assessments, otlp_span
from cauce.server.mlflow.tracking import experiment_id
from cauce.server.mlflow.wire import MlflowError, Params
from cauce.tracking.search import Token, scalar, tokenize
from cauce.workspace import Workspace

# The MLflow server whose API these routes answer (``GET /version``): a client that reads
# 3.4 or later sends its spans over OTLP, which Cauce receives.
MLFLOW_VERSION = "3.18.0"

_TRACE_ID = re.compile(r"^tr-(?P<hex>[0-9a-f]{32})$")
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
_SPANS_LOCATION = "mlflow.trace.spansLocation"
_NEWEST_FIRST = re.compile(r"^\s*((attributes?|trace)\.)?timestamp(_ms)?\s+desc\s*$", re.IGNORECASE)
_FILTER_KINDS = {
    "attribute": "attributes",
    "attributes": "attributes",
    "trace": "attributes",
    "tag": "tags",
    "tags": "tags",
    "metadata": "metadata",
    "request_metadata": "metadata",
}
_SOURCE_RUN = "mlflow.sourceRun"
_METADATA = {
    "mlflow.trace.session": "session_id",
    "mlflow.trace.user": "user_id",
    _SOURCE_RUN: "run_id",
}
MAX_RESULTS = 1000
MAX_BATCH = 100


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
        run_id=metadata.get(_SOURCE_RUN),
        experiment=_experiment(ws, info.get("trace_location")),
        workspace=ws,
    )
    return {"trace": {"trace_info": {**info, "tags": {**tags, _SPANS_LOCATION: "TRACKING_STORE"}}}}


def get_trace_info(ws: Workspace, p: Params) -> dict[str, Any]:
    """``GetTraceInfoV3``: a stored trace's info."""
    found = read_trace(_trace_hex(p.values.get("trace_id")), with_spans=False, workspace=ws)
    return {"trace": {"trace_info": _info(found.summary, found)}}


def get_trace(ws: Workspace, p: Params) -> dict[str, Any]:
    """``GetTrace`` (``mlflow.get_trace``): a stored trace, its info and its spans."""
    return {"trace": _trace(read_trace(_trace_hex(p.values.get("trace_id")), workspace=ws))}


def batch_get_traces(ws: Workspace, p: Params) -> dict[str, Any]:
    """``BatchGetTraces`` (``search_traces`` reads the spans of the traces it found so): the
    stored ones of the traces named, with their spans."""
    return {"traces": [_trace(found) for found in _stored(ws, p, with_spans=True)]}


def batch_get_trace_infos(ws: Workspace, p: Params) -> dict[str, Any]:
    """``BatchGetTraceInfos``: the infos of the stored ones of the traces named."""
    found = _stored(ws, p, with_spans=False)
    return {"trace_infos": [_info(t.summary, t) for t in found]}


def search_traces(ws: Workspace, p: Params) -> dict[str, Any]:
    """``SearchTracesV3`` (``mlflow.search_traces``): the infos of the traces filed under the
    experiment named that its filter matches, newest first."""
    limit = p.integer("max_results", default=100)
    if not 1 <= limit <= MAX_RESULTS:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"max_results must be 1..{MAX_RESULTS}, not {limit}"
        )
    for clause in p.repeated("order_by"):
        if not _NEWEST_FIRST.match(str(clause)):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"order_by: Cauce lists traces newest first (timestamp_ms DESC), not {clause!r}",
            )
    token = p.text("page_token")
    if token is not None and not _HEX_ID.match(token):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid page token {token!r}")
    named = {_experiment(ws, where) for where in p.repeated("locations")}
    if len(named) > 1:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"locations: Cauce searches one experiment's traces at a time, not {len(named)}",
        )
    found = list_traces(
        **_filter(p.text("filter") or ""),
        experiment=next(iter(named), None),
        before=token,
        limit=limit + 1,
        workspace=ws,
    )
    page = found[:limit]
    answer: dict[str, Any] = {"traces": [_info(summary) for summary in page]}
    if len(found) > limit:
        answer["next_page_token"] = page[-1].id
    return answer


def delete_traces(ws: Workspace, p: Params) -> dict[str, Any]:
    """``DeleteTraces`` (``MlflowClient.delete_traces``): an experiment's traces, those named or
    those started at ``max_timestamp_millis`` or before, the oldest ``max_traces`` of them."""
    experiment = _experiment(
        ws, {"mlflow_experiment": {"experiment_id": p.text("experiment_id", required=True)}}
    )
    newest = p.integer("max_timestamp_millis")
    deleted = remove_traces(
        [_trace_hex(given) for given in p.repeated("request_ids")] or None,
        before_ms=None if newest is None else newest + 1,
        experiment=experiment,
        max_traces=p.integer("max_traces"),
        workspace=ws,
    )
    return {"traces_deleted": deleted}


def _experiment(ws: Workspace, location: Any) -> str | None:
    """Cauce's id of the experiment a trace location names (MLflow's "0": the workspace's
    default one); None for no location."""
    if not isinstance(location, dict) or not isinstance(location.get("mlflow_experiment"), dict):
        return None
    named = location["mlflow_experiment"].get("experiment_id")
    return None if named in (None, "") else experiment_id(ws, str(named))


def _stored(ws: Workspace, p: Params, *, with_spans: bool) -> list[Trace]:
    ids = p.repeated("trace_ids")
    if len(ids) > MAX_BATCH:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"trace_ids: at most {MAX_BATCH} traces, not {len(ids)}"
        )
    found = []
    for given in ids:
        try:
            found.append(read_trace(_trace_hex(given), with_spans=with_spans, workspace=ws))
        except NotFound:
            continue
    return found


def _trace(found: Trace) -> dict[str, Any]:
    info = _info(found.summary, found)
    info["assessments"] = assessments(found.summary.id, found.spans)
    return {
        "trace_info": info,
        "spans": [otlp_span(found.summary.id, span) for span in found.spans],
    }


def _info(summary: TraceSummary, found: Trace | None = None) -> dict[str, Any]:
    """A trace's info as MLflow's ``TraceInfoV3``, in the experiment it is filed under; read
    whole (``found``), the prompt versions it used as MLflow's ``mlflow.linkedPrompts`` tag and
    the run it was made in as its ``mlflow.sourceRun`` metadata."""
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp

    started, took = Timestamp(), Duration()
    started.FromMilliseconds(summary.started_at)
    took.FromNanoseconds(int(summary.duration_ms * 1_000_000))
    metadata = {
        key: value
        for key, value in (
            ("mlflow.trace.session", summary.session_id),
            ("mlflow.trace.user", summary.user_id),
            (_SOURCE_RUN, found.run_id if found else None),
        )
        if value is not None
    }
    tags = {**summary.tags, "mlflow.traceName": summary.name, _SPANS_LOCATION: "TRACKING_STORE"}
    if found and found.prompts:
        tags[MLFLOW_LINKED_PROMPTS] = json.dumps(
            [{"name": n, "version": v} for n, v in map(_prompt_of, found.prompts)]
        )
    return {
        "trace_id": f"tr-{summary.id}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": summary.experiment_id or "0"},
        },
        "request_time": started.ToJsonString(),
        "execution_duration": took.ToJsonString(),
        "state": "ERROR" if summary.status == "error" else "OK",
        "trace_metadata": metadata,
        "tags": tags,
    }


def _filter(text: str) -> dict[str, Any]:
    """MLflow's trace filter as :func:`list_traces`'s arguments: comparisons joined by AND,
    each of a trace's name, status, run (=), its start (``timestamp_ms`` > or >=), a tag (=)
    or its session's, user's or run's metadata (=)."""
    tokens = tokenize(text)
    found: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        if i:
            if not (tokens[i].kind == "word" and tokens[i].text.upper() == "AND"):
                raise _unsupported_filter(text, tokens[i].text)
            i += 1
            if i == len(tokens):
                raise _unsupported_filter(text, "a filter that ends in AND")
        field, i = _field(tokens, i, text)
        if i + 1 >= len(tokens) or tokens[i + 1].kind not in ("number", "string"):
            given = " ".join(t.text for t in tokens[i : i + 2])
            raise _unsupported_filter(text, given or f"{field} compared with nothing")
        op, value = tokens[i].text, scalar(tokens[i + 1])
        argument, given = _argument(field, op, value, text)
        if argument in found:
            raise _unsupported_filter(text, f"a second condition on {field}")
        found[argument] = given
        i += 2
    return found


def _field(tokens: list[Token], i: int, text: str) -> tuple[str, int]:
    """The field compared at token ``i`` (``tags.env``, ``metadata.`mlflow.trace.user```) as
    ``kind.key``, and the index of the token after it."""
    if tokens[i].kind != "word":
        raise _unsupported_filter(text, tokens[i].text)
    head, _, key = tokens[i].text.partition(".")
    if not key and tokens[i].text.endswith(".") and i + 1 < len(tokens):
        if tokens[i + 1].kind == "quoted":
            i += 1
            key = tokens[i].text[1:-1]
    elif not key:
        head, key = "attributes", head
    kind = _FILTER_KINDS.get(head.lower())
    if kind is None or not key:
        raise _unsupported_filter(text, tokens[i].text)
    return f"{kind}.{key}", i + 1


def _argument(field: str, op: str, value: Any, text: str) -> tuple[str, Any]:
    kind, _, key = field.partition(".")
    if kind == "attributes" and key in ("timestamp_ms", "timestamp") and op in (">", ">="):
        if isinstance(value, int):
            return "since_ms", value + (op == ">")
    elif op != "=" or not isinstance(value, str):
        pass
    elif kind == "attributes" and key in ("name", "status", "state"):
        return ("name", value) if key == "name" else ("status", value.lower())
    elif kind == "attributes" and key == "run_id":
        return "run_id", value
    elif kind == "tags" and "=" not in key:
        return "tag", f"{key}={value}"
    elif kind == "metadata" and key in _METADATA:
        return _METADATA[key], value
    raise _unsupported_filter(text, f"{field} {op} {value!r}")


def _unsupported_filter(text: str, what: str) -> MlflowError:
    return MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"filter {text!r}: Cauce searches traces by comparisons joined by AND, each of "
        "trace.name, trace.status, trace.run_id (=), trace.timestamp_ms (> or >=), one "
        "tags.<key> (=) or metadata.`mlflow.trace.session` or `mlflow.trace.user` (=); "
        f"not {what}",
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


def link_traces_to_run(ws: Workspace, p: Params) -> dict[str, Any]:
    """``LinkTracesToRun`` (``mlflow.genai.evaluate`` links its rows' traces to its run)."""
    given = p.repeated("trace_ids")
    link_traces(p.text("run_id", required=True), [_trace_hex(t) for t in given], workspace=ws)
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
    name = str(assessment.get("assessment_name") or "")
    span_id = assessment.get("span_id") or None
    if "expectation" in assessment:
        add_expectation(
            trace_id, name, _expected(assessment["expectation"]), span_id=span_id, workspace=ws
        )
        return {"assessment": {**assessment, "assessment_id": f"a-{uuid.uuid4().hex}"}}
    feedback = assessment.get("feedback")
    if not isinstance(feedback, dict) or feedback.get("error"):
        raise InvalidInput(
            "assessment.feedback: a feedback with a value (one that failed has none to keep)",
            details={"field": "assessment.feedback"},
        )
    score, label = _score_and_label(feedback.get("value"))
    rationale = assessment.get("rationale")
    if span_id:
        add_evaluation(trace_id, str(span_id), name, score, label, rationale, workspace=ws)
    else:
        log_feedback(trace_id, name, score, label, rationale, workspace=ws)
    return {"assessment": {**assessment, "assessment_id": f"a-{uuid.uuid4().hex}"}}


def _expected(expectation: Any) -> Any:
    """An expectation's value: given as a JSON value, or serialized as JSON text."""
    if not isinstance(expectation, dict):
        raise InvalidInput(
            "assessment.expectation: an object", details={"field": "assessment.expectation"}
        )
    serialized = expectation.get("serialized_value")
    if not isinstance(serialized, dict):
        return expectation.get("value")
    if serialized.get("serialization_format") != "JSON_FORMAT":
        raise InvalidInput(
            "assessment.expectation.serialized_value: JSON_FORMAT is the one format read",
            details={"field": "assessment.expectation.serialized_value"},
        )
    try:
        return json.loads(str(serialized.get("value")))
    except ValueError:
        raise InvalidInput(
            "assessment.expectation.serialized_value.value: JSON text",
            details={"field": "assessment.expectation.serialized_value.value"},
        ) from None


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
    ("/traces/get", ("GET",), get_trace),
    ("/traces/batchGet", ("GET",), batch_get_traces),
    ("/traces/batchGetInfos", ("GET",), batch_get_trace_infos),
    ("/traces/search", ("POST",), search_traces),
    ("/traces/{trace_id}", ("GET",), get_trace_info),
    ("/traces/{trace_id}/assessments", ("POST",), create_assessment),
]
"""Under ``/api/3.0/mlflow``."""

V2_ROUTES: list[tuple[str, tuple[str, ...], Any]] = [
    ("/traces/delete-traces", ("POST",), delete_traces),
    ("/traces/link-prompts", ("POST",), link_prompts_to_trace),
    ("/traces/link-to-run", ("POST",), link_traces_to_run),
    ("/traces/{request_id}/tags", ("PATCH",), set_trace_tag),
    ("/traces/{request_id}/tags", ("DELETE",), delete_trace_tag),
]
"""Under ``/api/2.0/mlflow``, where MLflow's client sends these."""
