"""MLflow's tracing calls. MLflow 3.4 and later send a trace's spans over OTLP to
``/v1/traces`` (:mod:`cauce.server.otlp`), then, when its root span ends, the trace's info
(``StartTraceV3``): its session and user are kept on the trace's summary, and the answer says
the spans are in the tracking store already, so the client uploads no copy of them.
"""

from __future__ import annotations

import re
from typing import Any

from cauce.errors import InvalidInput
from cauce.genai.tracing.records import record_trace_info
from cauce.server.mlflow.wire import Params
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
    trace_id = str(info.get("trace_id", ""))
    found = _TRACE_ID.match(trace_id)
    if found is None:
        raise InvalidInput(
            f"trace_id: 'tr-' and 32 hex characters (OpenTelemetry's trace id), not {trace_id!r}",
            details={"field": "trace_id"},
        )
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
    record_trace_info(
        found["hex"],
        name=str(tags.get("mlflow.traceName") or "trace"),
        started_at=started.ToMilliseconds(),
        ended_at=started.ToMilliseconds() + max(0, took.ToMilliseconds()),
        status="error" if info.get("state") == "ERROR" else "ok",
        session_id=metadata.get("mlflow.trace.session"),
        user_id=metadata.get("mlflow.trace.user"),
        workspace=ws,
    )
    return {"trace": {"trace_info": {**info, "tags": {**tags, _SPANS_LOCATION: "TRACKING_STORE"}}}}


ROUTES: list[tuple[str, tuple[str, ...], Any]] = [("/traces", ("POST",), start_trace)]
