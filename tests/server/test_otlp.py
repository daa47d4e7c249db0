"""OpenTelemetry's exporters against ``cauce server``'s trace receiver, ``POST /v1/traces``.

Each test serves the server's whole app on loopback (``served.app_server``) and sends it what
real tracers send: the OpenTelemetry SDK's OTLP/HTTP exporter (protobuf), OTLP/JSON as a
Collector writes it (gzipped), OpenInference's and MLflow's attribute names, and MLflow's own
tracing with ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set. What arrives is read back with
Cauce's SDK, as ``cauce traces`` and the UI read it.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from cauce import workspace as workspace_module
from cauce.errors import NotFound
from cauce.genai import tracing
from cauce.server.tokens import create_token
from cauce.workspace import Workspace
from mlflow_client import mlflow_app
from optional import need
from served import app_server

PROTOBUF = {"Content-Type": "application/x-protobuf"}
MESSAGES = json.dumps([{"role": "user", "content": "Where is my parcel? ana@example.com"}])


def _exporting(url: str, service: str = "shop-bot", **headers: str) -> TracerProvider:
    """A tracer provider as an application sets one up: OTLP/HTTP to ``url``'s receiver."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers or None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _recording() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider whose finished spans are kept, to be sent by hand."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-bot"}))
    kept = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    return provider, kept


def _protobuf(spans: list[ReadableSpan]) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def _hex(span: Any) -> tuple[str, str]:
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def test_an_opentelemetry_apps_spans_become_cauce_traces(any_workspace: Workspace) -> None:
    with app_server(any_workspace) as url:
        provider = _exporting(url)
        tracer = provider.get_tracer("shop")
        with tracer.start_as_current_span(
            "answer",
            attributes={
                "session.id": "chat-7",
                "user.id": "ana",
                "langfuse.trace.tags": ["beta", "checkout"],  # Langfuse's: keys, no value
                "cauce.trace.tag.env": "prod",
            },
        ) as root:
            with tracer.start_as_current_span(
                "retrieval docs", attributes={"gen_ai.operation.name": "retrieval"}
            ):
                pass
            with tracer.start_as_current_span(
                "chat gpt-x",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-x",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 5,
                    "cauce.cost": 0.002,
                    "gen_ai.input.messages": MESSAGES,
                },
            ):
                pass
            root.add_event(
                "gen_ai.evaluation.result",
                {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.9},
            )
        with tracer.start_as_current_span("lookup order") as failing:
            failing.set_status(Status(StatusCode.ERROR, "upstream timed out"))
        assert provider.force_flush(10_000)
        provider.shutdown()
        trace_id, root_id = _hex(root)
        page = httpx.get(f"{url}/ui/traces/{trace_id}").text  # the UI names the application
        assert "<dt>Service</dt><dd>shop-bot</dd>" in page
    found = tracing.get_trace(trace_id)
    summary = found.summary
    assert (summary.name, summary.status, summary.span_count) == ("answer", "ok", 3)
    assert (summary.input_tokens, summary.output_tokens, summary.cost) == (12, 5, 0.002)
    assert (summary.session_id, summary.user_id) == ("chat-7", "ana")
    assert summary.scores == {"relevance": 0.9}
    assert summary.tags == {"beta": "", "checkout": "", "env": "prod"}
    assert [s.name for s in found.spans] == ["answer", "retrieval docs", "chat gpt-x"]
    assert found.spans[0].span_id == root_id and found.spans[0].parent_id is None
    chat = found.spans[2]
    assert (chat.kind, chat.operation, chat.input_tokens, chat.output_tokens, chat.cost) == (
        "client",
        "chat",
        12,
        5,
        0.002,
    )
    assert chat.attributes["service.name"] == "shop-bot"
    assert chat.attributes["gen_ai.input.messages"] == MESSAGES
    assert found.spans[1].operation == "retrieval"
    failed = tracing.get_trace(_hex(failing)[0])
    assert failed.summary.status == "error"
    assert failed.spans[0].status_message == "upstream timed out"
    [session] = tracing.list_sessions()
    assert (session.id, session.traces, session.input_tokens, session.user_ids) == (
        "chat-7",
        1,
        12,
        ["ana"],
    )


def test_a_traces_spans_sent_in_parts_are_summed_whenever_its_root_is_there(
    any_workspace: Workspace,
) -> None:
    provider, kept = _recording()
    tracer = provider.get_tracer("shop")
    usage = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}
    with (
        tracer.start_as_current_span("answer") as root,
        tracer.start_as_current_span("chat", attributes=usage),
    ):
        pass
    # A span of the trace that ends after its root (work the answer left running).
    late = tracer.start_span(
        "feedback", context=otel_trace.set_span_in_context(root), attributes={"user.id": "ana"}
    )
    late.set_attribute("gen_ai.usage.input_tokens", 3)
    late.end()
    child, first_root, after = kept.get_finished_spans()
    trace_id = _hex(root)[0]
    with app_server(any_workspace) as url:

        def send(*spans: ReadableSpan) -> None:
            answer = httpx.post(
                f"{url}/v1/traces", content=_protobuf(list(spans)), headers=PROTOBUF
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/x-protobuf"

        send(child)
        early = tracing.get_trace(trace_id).summary  # listed by its span until the root comes
        assert (early.name, early.span_count, early.input_tokens) == ("chat", 1, 10)
        send(first_root)
        summary = tracing.get_trace(trace_id).summary
        assert (summary.span_count, summary.input_tokens, summary.user_id) == (2, 10, None)
        send(after)
        summary = tracing.get_trace(trace_id).summary
        assert (summary.span_count, summary.input_tokens, summary.output_tokens) == (3, 13, 2)
        assert summary.user_id == "ana"  # named by a span, not the root
        send(child, first_root, after)  # an exporter's retry
    again = tracing.get_trace(trace_id)
    assert again.summary == summary and len(again.spans) == 3


def test_a_service_called_inside_another_systems_trace_is_listed_by_its_own_spans(
    any_workspace: Workspace,
) -> None:
    """The caller's root span goes elsewhere (its traceparent header is all Cauce sees of it):
    the service's first span stands for the trace, and its spans hang below it."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    provider, kept = _recording()
    tracer = provider.get_tracer("shop")
    caller = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    inside = otel_trace.set_span_in_context(NonRecordingSpan(caller))
    with (
        tracer.start_as_current_span("handle request", context=inside),
        tracer.start_as_current_span("chat", attributes={"gen_ai.usage.input_tokens": 7}),
    ):
        pass
    with app_server(any_workspace) as url:
        body = _protobuf(list(kept.get_finished_spans()))
        assert httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        page = httpx.get(f"{url}/ui/traces/{0xABC:032x}").text
    # The UI's tree starts at the service's span, its own below it.
    rows = re.findall(r'aria-level="(\d)"[^>]*>(.*?)</tr>', page, re.S)
    assert [(level, "handle request" in row, "chat" in row) for level, row in rows] == [
        ("1", True, False),
        ("2", False, True),
    ]
    [summary] = tracing.list_traces()
    assert (summary.id, summary.name, summary.span_count, summary.input_tokens) == (
        f"{0xABC:032x}",
        "handle request",
        2,
        7,
    )
    found = tracing.get_trace(summary.id)
    assert [s.name for s in found.children(f"{0xDEF:016x}")] == ["handle request"]


def _json_request(trace_id: str, now: int) -> dict[str, Any]:
    """OTLP/JSON as a Collector writes it: hex ids, integers as text or numbers, camelCase."""

    def text(key: str, value: str) -> dict[str, Any]:
        return {"key": key, "value": {"stringValue": value}}

    def number(key: str, value: int) -> dict[str, Any]:
        return {"key": key, "value": {"intValue": str(value)}}

    def span(span_id: str, parent: str, name: str, *attributes: Any) -> dict[str, Any]:
        return {
            "traceId": trace_id,
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "kind": 3 if parent else 2,
            "startTimeUnixNano": str(now),
            "endTimeUnixNano": now + 5_000_000,
            "attributes": list(attributes),
            "status": {},
        }

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [text("service.name", "rag-api")]},
                "scopeSpans": [
                    {
                        "scope": {"name": "openinference.instrumentation.openai"},
                        "spans": [
                            span(
                                "a" * 16,
                                "",
                                "query",
                                text("openinference.span.kind", "CHAIN"),
                                text("session.id", "s-9"),
                                text("input.value", "Where is my parcel?"),
                            ),
                            span(
                                "b" * 16,
                                "a" * 16,
                                "ChatCompletion",
                                text("openinference.span.kind", "LLM"),
                                number("llm.token_count.prompt", 30),
                                number("llm.token_count.completion", 7),
                                text("llm.input_messages.0.message.content", "Where is..."),
                            ),
                            span(
                                "c" * 16,
                                "a" * 16,
                                "search",
                                text("mlflow.spanType", '"RETRIEVER"'),
                                text(
                                    "mlflow.chat.tokenUsage",
                                    '{"input_tokens": 4, "output_tokens": 0}',
                                ),
                            ),
                        ],
                    }
                ],
            }
        ]
    }


def test_otlp_json_gzipped_with_openinference_and_mlflow_names(workspace: Workspace) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    body = gzip.compress(json.dumps(_json_request(trace_id, time.time_ns())).encode())
    with app_server(workspace) as url:
        answer = httpx.post(
            f"{url}/v1/traces",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {}
    found = tracing.get_trace(trace_id)
    assert [(s.name, s.kind, s.operation) for s in found.spans] == [
        ("query", "server", None),
        ("ChatCompletion", "client", "chat"),
        ("search", "client", "retrieval"),
    ]
    assert [(s.input_tokens, s.output_tokens) for s in found.spans] == [
        (None, None),
        (30, 7),
        (4, 0),
    ]
    summary = found.summary
    assert (summary.input_tokens, summary.output_tokens, summary.session_id) == (34, 7, "s-9")
    assert found.spans[0].attributes["service.name"] == "rag-api"
    assert found.spans[0].attributes["input.value"] == "Where is my parcel?"


def redact_emails(text: str) -> str:
    return text.replace("ana@example.com", "[EMAIL]")


def _reopen(monkeypatch: pytest.MonkeyPatch, **env: str) -> Workspace:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    workspace_module.reset()
    return workspace_module.current()


def _content_spans() -> tuple[str, bytes]:
    provider, kept = _recording()
    with provider.get_tracer("shop").start_as_current_span(
        "chat",
        attributes={
            "gen_ai.input.messages": MESSAGES,
            "input.value": "ana@example.com asks",
            "llm.input_messages.0.message.content": "ana@example.com asks",
            "gen_ai.usage.input_tokens": 9,
            "gen_ai.request.model": "gpt-x",
        },
    ) as span:
        span.add_event("gen_ai.user.message", {"content": "ana@example.com asks"})
        span.add_event("exception", {"exception.type": "TimeoutError"})
    return _hex(span)[0], _protobuf(list(kept.get_finished_spans()))


def test_content_is_left_out_or_redacted_as_the_workspace_says(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    redacting = _reopen(monkeypatch, CAUCE_TRACE_REDACT=f"{__name__}:redact_emails")
    trace_id, body = _content_spans()
    with app_server(redacting) as url:
        assert httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    [span] = tracing.get_trace(trace_id, workspace=redacting).spans
    assert "ana@example.com" not in json.dumps([span.attributes, span.events])
    assert span.attributes["input.value"] == "[EMAIL] asks"
    assert "[EMAIL]" in span.attributes["gen_ai.input.messages"]
    assert span.events[0]["attributes"]["content"] == "[EMAIL] asks"

    shape_only = _reopen(monkeypatch, CAUCE_TRACE_CONTENT="false")
    trace_id, body = _content_spans()
    with app_server(shape_only) as url:
        assert httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    [span] = tracing.get_trace(trace_id, workspace=shape_only).spans
    assert sorted(span.attributes) == [
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "service.name",
    ]
    assert [e["name"] for e in span.events] == ["exception"]  # the message event is content
    assert span.input_tokens == 9


def test_bad_requests_are_refused_whole_and_name_what_is_wrong(workspace: Workspace) -> None:
    now = time.time_ns()
    bad_id = _json_request("4bf92f3577b34da6a3ce929d0e0e4736", now)
    bad_id["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "zz" * 8
    backwards = _json_request("5bf92f3577b34da6a3ce929d0e0e4736", now)
    backwards["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["endTimeUnixNano"] = now - 1
    short = _json_request("6bf92f3577b34da6a3ce929d0e0e4736", now)
    short["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "4bf92f35"
    where = "resourceSpans.0.scopeSpans.0.spans"
    with app_server(workspace) as url:
        receiver = f"{url}/v1/traces"

        def refused(status: int, body: bytes, **headers: str) -> dict[str, Any]:
            answer = httpx.post(receiver, content=body, headers=headers)
            assert answer.status_code == status, answer.text
            error: dict[str, Any] = answer.json()["error"]
            return error

        as_json = {"Content-Type": "application/json"}
        for document, field_name in (
            (bad_id, f"{where}.1.spanId"),
            (backwards, f"{where}.2.endTimeUnixNano"),
            (short, f"{where}.0.traceId"),
        ):
            error = refused(400, json.dumps(document).encode(), **as_json)
            assert error["details"]["field"] == field_name, error
            assert error["message"].startswith(field_name)
        assert "not an OTLP" in refused(400, b"\xff\x00 not protobuf", **PROTOBUF)["message"]
        nested = b"[" * 100_000 + b"]" * 100_000  # too deep for Python's parser: still a 400
        assert "not valid JSON" in refused(400, nested, **as_json)["message"]
        assert "text/plain" in refused(415, b"x", **{"Content-Type": "text/plain"})["message"]
        assert (
            "gzip"
            in refused(415, b"not gzip", **PROTOBUF, **{"Content-Encoding": "gzip"})["message"]
        )
        assert "br" in refused(415, b"x", **PROTOBUF, **{"Content-Encoding": "br"})["message"]
        bomb = gzip.compress(b"\0" * (40 * 1024**2))  # 40 MB of zeros in ~40 KB
        error = refused(413, bomb, **PROTOBUF, **{"Content-Encoding": "gzip"})
        assert "unpacks to over the limit" in error["message"]
    assert tracing.list_traces() == []  # the valid spans of a refused request are not kept


def test_named_workspaces_and_tokens(workspace: Workspace) -> None:
    provider, kept = _recording()
    with provider.get_tracer("shop").start_as_current_span("answer") as span:
        pass
    body = _protobuf(list(kept.get_finished_spans()))
    trace_id = _hex(span)[0]
    with app_server(workspace) as url:
        created = httpx.post(f"{url}/api/v1/workspaces", json={"name": "support"})
        assert created.status_code == 201, created.text
        answer = httpx.post(f"{url}/w/support/v1/traces", content=body, headers=PROTOBUF)
        assert answer.status_code == 200, answer.text
    with pytest.raises(NotFound):  # stored in support, not in the home workspace
        tracing.get_trace(trace_id)
    viewer = create_token("dashboards", "viewer", home=workspace)[1]
    editor = create_token("shop-bot", "editor", home=workspace)[1]
    with app_server(workspace) as url:  # a token exists: requests must carry one
        for token, status in ((None, 401), (viewer, 403)):
            headers = {**PROTOBUF, **({"Authorization": f"Bearer {token}"} if token else {})}
            answer = httpx.post(f"{url}/v1/traces", content=body, headers=headers)
            assert answer.status_code == status, answer.text
        # The standard exporter, its token in its headers.
        exporting = _exporting(url, Authorization=f"Bearer {editor}")
        with exporting.get_tracer("shop").start_as_current_span("signed in") as signed:
            pass
        assert exporting.force_flush(10_000)
        exporting.shutdown()
    assert tracing.get_trace(_hex(signed)[0]).summary.name == "signed in"
    assert tracing.list_traces()[0].name == "signed in" and len(tracing.list_traces()) == 1


def test_services_sending_spans_of_one_trace_at_once_leave_it_whole(
    any_workspace: Workspace,
) -> None:
    """The services of one distributed trace each send their span at the same instant: every
    request sums the trace after the one before it (PostgreSQL's reads would miss the others')."""
    from together import at_once

    provider, kept = _recording()
    tracer = provider.get_tracer("shop")
    roots = []
    for _ in range(3):
        with tracer.start_as_current_span("checkout") as root:
            for step in range(7):
                with tracer.start_as_current_span(f"service {step}"):
                    pass
        roots.append(root)
    bodies = [_protobuf([span]) for span in kept.get_finished_spans()]
    with app_server(any_workspace) as url, httpx.Client() as http:
        sent = at_once(
            [
                lambda b=body: http.post(f"{url}/v1/traces", content=b, headers=PROTOBUF)
                for body in bodies
            ]
        )
    assert [answer.status_code for answer in sent] == [200] * 24
    for root in roots:
        summary = tracing.get_trace(_hex(root)[0]).summary
        assert (summary.name, summary.span_count) == ("checkout", 8)


MLFLOW_APP = """
import os

import mlflow

@mlflow.trace(span_type="LLM")
def generate(question):
    return {"answer": question.upper()}

@mlflow.trace(span_type="AGENT")
def agent(question):
    mlflow.update_current_trace(
        metadata={"mlflow.trace.session": "chat-3", "mlflow.trace.user": "ana"},
        # MLflow 3.18 fails to end a span of a tagged trace it exports over OTLP alone.
        tags={"env": "prod"} if os.environ.get("MLFLOW_TRACKING_URI") else None,
    )
    print(mlflow.get_current_active_span().trace_id)
    return generate(question)

agent("where is my parcel?")
mlflow.flush_trace_async_logging()
"""


@pytest.mark.parametrize("route", ["tracking server", "OTLP endpoint"])
def test_mlflow_tracing_sends_its_traces_to_cauce(workspace: Workspace, route: str) -> None:
    """MLflow's tracing pointed at the server as its tracking server (spans over OTLP, then
    the trace's info, which names its session and user), or at the OTLP endpoint alone."""
    need("mlflow", extra="dev")
    with app_server(workspace) as url:
        if route == "tracking server":
            done = mlflow_app(MLFLOW_APP, MLFLOW_TRACKING_URI=url)
        else:
            done = mlflow_app(
                MLFLOW_APP,
                OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{url}/v1/traces",
                OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
            )
    assert "Failed" not in done.stderr and "WARNING" not in done.stderr, done.stderr[-3000:]
    [summary] = tracing.list_traces()
    assert done.stdout.strip() == f"tr-{summary.id}"  # MLflow's id is OpenTelemetry's
    found = tracing.get_trace(summary.id)
    assert [(s.name, s.operation) for s in found.spans] == [
        ("agent", "invoke_agent"),
        ("generate", "chat"),
    ]
    assert "WHERE IS MY PARCEL?" in found.spans[1].attributes["mlflow.spanOutputs"]
    if route == "tracking server":  # the trace's info reaches the tracking server only
        assert (summary.session_id, summary.user_id) == ("chat-3", "ana")
        assert summary.tags == {"env": "prod"}  # MLflow's own mlflow.* tags are not kept


MLFLOW_FEEDBACK = """
import mlflow
from mlflow.entities import AssessmentSource

@mlflow.trace
def agent(question):
    with mlflow.start_span("retrieval") as span:
        retrieval = span.span_id
    return question.upper(), retrieval

answer, retrieval = agent("where is my parcel?")
mlflow.flush_trace_async_logging()
trace_id = mlflow.get_last_active_trace_id()
person = AssessmentSource(source_type="HUMAN", source_id="ana")
mlflow.log_feedback(trace_id=trace_id, name="helpful", value=True, rationale="clear", source=person)
mlflow.log_feedback(trace_id=trace_id, name="stars", value=4)
mlflow.log_feedback(trace_id=trace_id, name="tone", value="friendly")
mlflow.log_feedback(trace_id=trace_id, name="on topic", value=0.5, span_id=retrieval)
mlflow.log_expectation(trace_id=trace_id, name="expected_response", value="WHERE IS MY PARCEL?")
mlflow.log_expectation(trace_id=trace_id, name="expected_facts", value=["parcel", "where"])
"""


def test_mlflow_feedback_is_cauce_feedback(workspace: Workspace) -> None:
    need("mlflow", extra="dev")
    with app_server(workspace) as url:
        mlflow_app(MLFLOW_FEEDBACK, MLFLOW_TRACKING_URI=url)
    [summary] = tracing.list_traces()
    assert summary.scores == {"helpful": 1.0, "stars": 4.0, "tone": "friendly"}
    retrieval = tracing.get_trace(summary.id).spans[1]
    [event] = retrieval.events
    assert event["attributes"]["gen_ai.evaluation.name"] == "on topic"
    assert event["attributes"]["gen_ai.evaluation.score.value"] == 0.5
    helpful = {s.name: s for s in tracing.list_scores()}["helpful"]
    assert (helpful.mean, helpful.labels) == (1.0, {"true": 1})
    # Expectations: ground truth the trace's dataset row carries, for an evaluation to read.
    [row] = tracing.trace_rows()
    assert row["expectations.expected_response"] == "WHERE IS MY PARCEL?"
    assert json.loads(row["expectations.expected_facts"]) == ["parcel", "where"]


def _trace_info(trace_id: str, started_ms: int) -> dict[str, Any]:
    """``StartTraceV3``'s body as the MLflow client writes it."""
    return {
        "trace": {
            "trace_info": {
                "trace_id": f"tr-{trace_id}",
                "trace_location": {
                    "type": "MLFLOW_EXPERIMENT",
                    "mlflow_experiment": {"experiment_id": "0"},
                },
                "request_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_ms / 1000)),
                "execution_duration": "0.250s",
                "state": "OK",
                "trace_metadata": {"mlflow.trace.session": "chat-3", "mlflow.trace.user": "ana"},
                "tags": {"mlflow.traceName": "answer"},
            },
            "data": {"spans": []},
        }
    }


@pytest.mark.parametrize("info_first", [True, False], ids=["info first", "spans first"])
def test_an_mlflow_traces_info_and_spans_meet_in_either_order(
    any_workspace: Workspace, info_first: bool
) -> None:
    provider, kept = _recording()
    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span("answer") as root, tracer.start_as_current_span("chat"):
        pass
    trace_id = _hex(root)[0]
    body = _protobuf(list(kept.get_finished_spans()))
    with app_server(any_workspace) as url:

        def send_info() -> None:
            info = _trace_info(trace_id, root.start_time // 1_000_000)
            answer = httpx.post(f"{url}/api/3.0/mlflow/traces", json=info)
            assert answer.status_code == 200, answer.text
            tags = answer.json()["trace"]["trace_info"]["tags"]
            assert tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"  # no copy uploaded

        def send_spans() -> None:
            answer = httpx.post(f"{url}/v1/traces", content=body, headers=PROTOBUF)
            assert answer.status_code == 200, answer.text

        first, then = (send_info, send_spans) if info_first else (send_spans, send_info)
        first()
        if info_first:  # listed already, from its info alone
            early = tracing.get_trace(trace_id)
            assert (early.summary.name, early.summary.span_count, early.spans) == ("answer", 0, [])
        then()
        assert httpx.get(f"{url}/version").text == "3.18.0"
        bad = _trace_info("f" * 31, 0)
        answer = httpx.post(f"{url}/api/3.0/mlflow/traces", json=bad)
        assert (answer.status_code, answer.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert "trace_id" in answer.json()["message"]
    found = tracing.get_trace(trace_id)
    summary = found.summary
    assert (summary.span_count, summary.session_id, summary.user_id) == (2, "chat-3", "ana")
    assert [s.name for s in found.spans] == ["answer", "chat"]
    assert [s.id for s in tracing.list_traces()] == [trace_id]


@pytest.fixture(autouse=True)
def _no_global_provider() -> Iterator[None]:
    """The tests' providers are their own: OpenTelemetry's global one stays unset."""
    before = otel_trace.get_tracer_provider()
    yield
    assert otel_trace.get_tracer_provider() is before


MLFLOW_PROMPTED = """
import mlflow

@mlflow.trace(span_type="AGENT")
def answer(name):
    prompt = mlflow.genai.load_prompt("prompts:/greet@production")
    return prompt.format(name=name)

answer("Ana")
mlflow.flush_trace_async_logging()
print(mlflow.get_last_active_trace_id())
"""


def test_a_prompt_an_mlflow_app_loads_in_a_trace_is_linked_to_it(workspace: Workspace) -> None:
    """The span names the version, then the client links it (in a thread its process waits
    for) through the trace's info and the link call: one lineage edge, and no warning."""
    from cauce.genai import prompts
    from cauce.lineage.graph import walk

    need("mlflow", extra="dev")
    version = prompts.register("greet", "Hello {{ name }}", labels=["production"])
    with app_server(workspace) as url:
        done = mlflow_app(MLFLOW_PROMPTED, MLFLOW_TRACKING_URI=url)
        trace_id = done.stdout.strip().removeprefix("tr-")
        info = httpx.get(f"{url}/api/3.0/mlflow/traces/tr-{trace_id}").json()
        tags = info["trace"]["trace_info"]["tags"]
        assert json.loads(tags["mlflow.linkedPrompts"]) == [{"name": "greet", "version": "1"}]
        named = [f"tr-{trace_id}", f"tr-{'f' * 32}"]  # the second one is not stored
        batch = httpx.get(f"{url}/api/3.0/mlflow/traces/batchGet", params={"trace_ids": named})
        [found] = batch.json()["traces"]
        assert found["trace_info"]["tags"]["mlflow.linkedPrompts"] == tags["mlflow.linkedPrompts"]
        unknown = httpx.get(f"{url}/api/3.0/mlflow/traces/tr-{'f' * 32}")
        assert unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        # The calls the client makes when the trace's info lacks a version it used.
        prompts.register("greet", "Hi {{ name }}")
        prompts.register("farewell", "Bye {{ name }}")
        base = f"{url}/api/2.0/mlflow/traces"
        linked = httpx.post(
            f"{base}/link-prompts",
            json={
                "trace_id": f"tr-{trace_id}",
                "prompt_versions": [{"name": "greet", "version": "2"}],
            },
        )
        assert linked.status_code == 200, linked.text
        tag = [{"name": "farewell", "version": "1"}]
        body = {"key": "mlflow.linkedPrompts", "value": json.dumps(tag)}
        assert httpx.patch(f"{base}/tr-{trace_id}/tags", json=body).status_code == 200
        missing = {
            "trace_id": f"tr-{trace_id}",
            "prompt_versions": [{"name": "greet", "version": "9"}],
        }
        assert httpx.post(f"{base}/link-prompts", json=missing).status_code == 404
        # Any other tag is the trace's tag.
        tag = {"key": "env", "value": "prod"}
        assert httpx.patch(f"{base}/tr-{trace_id}/tags", json=tag).status_code == 200
        assert tracing.get_trace(trace_id).summary.tags == {"env": "prod"}
        info = httpx.get(f"{url}/api/3.0/mlflow/traces/tr-{trace_id}").json()
        assert info["trace"]["trace_info"]["tags"]["env"] == "prod"
        gone = httpx.request("DELETE", f"{base}/tr-{trace_id}/tags", json={"key": "env"})
        assert gone.status_code == 200 and tracing.get_trace(trace_id).summary.tags == {}
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    assert tracing.get_trace(trace_id).prompts == [
        "prompts:/farewell/1",
        "prompts:/greet/1",
        "prompts:/greet/2",
    ]
    graph = walk(workspace, "prompt_version", version.id, direction="downstream")
    assert sorted((e.dst.kind, e.relation) for e in graph.edges if e.src.id == version.id) == [
        ("prompt_version", "revised"),
        ("trace", "used_by"),
    ]
