"""Tracing: OpenTelemetry GenAI spans stored in the workspace, redacted, exported over OTLP."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.clitools import assert_one_line_error
from tests.clitools import cauce as run_cli
from tests.genai.upstream import Upstream

import cauce
from cauce import workspace as workspace_module
from cauce.errors import InvalidInput, LLMError, NotFound
from cauce.genai import connections, tracing
from cauce.workspace import Workspace

QUESTION = [{"role": "user", "content": "mail ana@example.com about rollouts"}]


def redact_emails(text: str) -> str:
    """The redaction hook the tests name in CAUCE_TRACE_REDACT."""
    return re.sub(r"[\w.]+@[\w.]+", "[EMAIL]", text)


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """Local, then through a server: spans are made here, and stored where the workspace is."""
    return seam_workspace


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """SQLite, PostgreSQL, then through a server."""
    return seam_any_workspace


def _connect(url: str, **prices: Any) -> connections.LLMClient:
    connections.put(
        "llm", {"base_url": url, "models": {"chat": "echo"}, "max_retries": 0, "prices": prices}
    )
    return connections.client("llm")


def _reopen(monkeypatch: pytest.MonkeyPatch, **env: str) -> Workspace:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    workspace_module.reset()
    return workspace_module.current()


def test_a_flow_of_spans_is_stored_as_a_tree_with_genai_attributes(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    llm = _connect(upstream.url, echo={"input": 1.0, "output": 2.0})
    with tracing.span("answer", operation="invoke_agent") as root:
        with tracing.span("retrieval docs", operation="retrieval") as retrieval:
            retrieval.set("gen_ai.data_source.id", "docs@3")
            retrieval.content("gen_ai.retrieval.documents", [{"id": "a.md#0", "score": 0.9}])
        answer = llm.chat(QUESTION, temperature=0, max_tokens=50, stop=["\n"])
        second = llm.chat(QUESTION, max_tokens=2)
    found = tracing.get_trace(root.trace_id)
    assert [s.name for s in found.spans] == ["answer", "retrieval docs", "chat echo", "chat echo"]
    assert [s.parent_id for s in found.spans[1:]] == [root.span_id] * 3
    chat = found.spans[2]
    assert chat.kind == "client" and chat.operation == "chat"
    attributes = chat.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "echo"
    assert attributes["gen_ai.request.temperature"] == 0
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.request.stop_sequences"] == ["\n"]
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert attributes["server.address"] == "127.0.0.1"
    assert json.loads(attributes["gen_ai.input.messages"]) == QUESTION
    assert (chat.input_tokens, chat.output_tokens) == (
        answer.usage.input_tokens,
        answer.usage.output_tokens,
    )
    assert found.spans[3].attributes["gen_ai.response.finish_reasons"] == ["length"]
    summary = found.summary
    assert summary.name == "answer" and summary.span_count == 4 and summary.status == "ok"
    assert summary.input_tokens == answer.usage.input_tokens + second.usage.input_tokens
    assert summary.output_tokens == answer.usage.output_tokens + second.usage.output_tokens
    assert summary.cost == pytest.approx(answer.cost + second.cost)
    assert [t.id for t in tracing.list_traces()] == [root.trace_id]
    assert tracing.trace_names() == ["answer"]  # what a trace list can be filtered by


def test_a_streamed_answer_is_one_span_and_an_abandoned_one_is_marked(
    workspace: Workspace, upstream: Upstream
) -> None:
    llm = _connect(upstream.url)
    with tracing.span("stream", operation="invoke_agent") as root:
        whole = llm.stream(QUESTION)
        whole.text()
        partial = llm.stream(QUESTION)
        iterator = iter(partial)
        next(iterator)
        iterator.close()  # the reader walks away after the first delta
    spans = tracing.get_trace(root.trace_id).spans
    done, abandoned = spans[1], spans[2]
    assert done.attributes["gen_ai.request.stream"] is True
    assert done.output_tokens == whole.result.usage.output_tokens
    assert "cauce.stream.abandoned" not in done.attributes
    assert done.attributes["cauce.time_to_first_token_ms"] > 0
    assert abandoned.attributes["cauce.stream.abandoned"] is True
    assert json.loads(abandoned.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "content": "echo:"}
    ]


def test_a_failed_call_is_an_error_span(workspace: Workspace, upstream: Upstream) -> None:
    llm = _connect(upstream.url)
    upstream.script = [(500, {})]
    with pytest.raises(LLMError), tracing.span("failing") as root:
        llm.chat(QUESTION)
    trace = tracing.get_trace(root.trace_id)
    assert trace.summary.status == "error"
    chat = trace.spans[1]
    assert chat.status == "error" and chat.attributes["error.type"] == "LLMError"
    assert "HTTP 500" in (chat.status_message or "")


def test_root_spans_can_go_to_a_sink_whole_and_redacted_children_stay_with_opentelemetry(
    workspace: Workspace,
) -> None:
    """What the router does with its relays' spans: a root span from start() reaches the sink
    when it ends, as a finished span and its trace's summary, which store as any other; a
    span started inside another one does not; without the sink, OpenTelemetry's way again."""
    got: list[tuple[tracing.FinishedSpan, tracing.FinishedTrace]] = []
    tracing.set_redactor(lambda text: text.replace("secret", "[X]"))
    tracing.send_root_spans_to(lambda span, trace: got.append((span, trace)))
    try:
        chat = tracing.start("chat echo", operation="chat", kind="client")
        chat.content("gen_ai.input.messages", [{"role": "user", "content": "a secret"}])
        chat.usage(4, 5, 0.25)
        chat.set("gen_ai.response.finish_reasons", ["stop"])
        chat.end()
        with tracing.span("flow") as flow:
            inner = tracing.start("chat inner", operation="chat")
            inner.end()
    finally:
        tracing.send_root_spans_to(None)
        tracing.set_redactor(None)
    [(span, trace)] = got
    assert (span.trace_id, span.span_id) == (chat.trace_id, chat.span_id)
    assert (span.name, span.kind, span.operation, span.parent_id) == (
        "chat echo", "client", "chat", None,
    )  # fmt: skip
    assert (span.input_tokens, span.output_tokens, span.cost) == (4, 5, 0.25)
    assert "[X]" in span.attributes["gen_ai.input.messages"]
    assert (trace.span_count, trace.input_tokens, trace.output_tokens) == (1, 4, 5)
    tracing.record_spans([span], [trace])
    stored = tracing.get_trace(chat.trace_id)
    assert stored.summary.name == "chat echo" and stored.summary.cost == 0.25
    assert stored.spans[0].attributes["gen_ai.response.finish_reasons"] == ["stop"]
    tracing.flush()
    assert [s.name for s in tracing.get_trace(flow.trace_id).spans] == ["flow", "chat inner"]
    after = tracing.start("chat later")
    after.end()
    tracing.flush()
    assert tracing.get_trace(after.trace_id).summary.name == "chat later" and len(got) == 1


def test_content_can_be_left_out_and_is_redacted_before_it_is_stored(
    workspace: Workspace, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _reopen(monkeypatch, CAUCE_TRACE_REDACT=f"{__name__}:redact_emails")
    llm = _connect(upstream.url)
    with tracing.span("redacted", workspace=ws) as root:
        llm.chat(QUESTION)
    chat = tracing.get_trace(root.trace_id).spans[1]
    assert "[EMAIL]" in chat.attributes["gen_ai.input.messages"]
    assert "ana@example.com" not in json.dumps(chat.attributes)
    ws = _reopen(monkeypatch, CAUCE_TRACE_CONTENT="false")
    llm = connections.client("llm")
    with tracing.span("shape only") as root:
        llm.chat(QUESTION)
    chat = tracing.get_trace(root.trace_id).spans[1]
    assert "gen_ai.input.messages" not in chat.attributes
    assert "gen_ai.output.messages" not in chat.attributes
    assert chat.input_tokens == 4


def test_the_sdk_redactor_runs_too(workspace: Workspace) -> None:
    tracing.set_redactor(lambda text: text.replace("secret", "[X]"))
    try:
        with tracing.span("node") as node:
            node.content("cauce.input", {"question": "the secret plan"})
    finally:
        tracing.set_redactor(None)
    assert tracing.get_trace(node.trace_id).spans[0].attributes["cauce.input"] == (
        '{"question": "the [X] plan"}'
    )


def test_evaluations_are_events_on_the_evaluated_span(workspace: Workspace) -> None:
    with tracing.span("answer") as root:
        root.evaluation("relevance", 4, "pass", "on topic")
    tracing.record_evaluation(root.trace_id, root.span_id, "f1", 0.5, None)
    events = tracing.get_trace(root.trace_id).spans[0].events
    assert [e["name"] for e in events] == ["gen_ai.evaluation.result"] * 2
    assert events[0]["attributes"] == {
        "gen_ai.evaluation.name": "relevance",
        "gen_ai.evaluation.score.value": 4.0,
        "gen_ai.evaluation.score.label": "pass",
        "gen_ai.evaluation.explanation": "on topic",
    }
    assert events[1]["attributes"]["gen_ai.evaluation.score.value"] == 0.5


class Receiver:
    """An OTLP/HTTP traces receiver on loopback: decodes each protobuf export request."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.spans: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        receiver.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_spans_are_exported_over_otlp_redacted(
    workspace: Workspace,
    upstream: Upstream,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = _reopen(
        monkeypatch,
        CAUCE_OTLP_ENDPOINT=receiver.url,
        CAUCE_TRACE_REDACT=f"{__name__}:redact_emails",
    )
    llm = _connect(upstream.url)
    with tracing.span("exported", workspace=ws) as root:
        llm.chat(QUESTION)
    tracing.flush(ws)
    names = sorted(s.name for s in receiver.spans)
    assert names == ["chat echo", "exported"]
    chat = next(s for s in receiver.spans if s.name == "chat echo")
    attributes = {a.key: a.value for a in chat.attributes}
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 5
    assert "[EMAIL]" in attributes["gen_ai.input.messages"].string_value
    assert chat.trace_id.hex() == root.trace_id


def _quick_trace() -> tuple[tracing.FinishedSpan, tracing.FinishedTrace]:
    """A trace of one span that took 0.25 ms, inside one millisecond: its summary says 0 ms."""
    start = 1_790_000_000_000_100_000
    root = tracing.FinishedSpan(
        trace_id="a" * 32, span_id="b" * 16, parent_id=None, name="quick", kind="internal",
        operation=None, started_ns=start, ended_ns=start + 250_000, status="ok",
        status_message=None, input_tokens=None, output_tokens=None, cost=None, attributes={},
        events=[],
    )  # fmt: skip
    summary = tracing.FinishedTrace(
        id=root.trace_id, name="quick", root_span_id=root.span_id, started_at=start // 10**6,
        ended_at=(start + 250_000) // 10**6, status="ok", span_count=1, input_tokens=0,
        output_tokens=0, cost=None,
    )  # fmt: skip
    return root, summary


def test_a_trace_faster_than_a_millisecond_reads_its_root_spans_time(
    any_workspace: Workspace,
) -> None:
    """The summary keeps whole ms; the list, the trace and its dataset row read the root
    span's ns (0.25 ms, not 0 ms). A summary stored without its spans reads its own ms."""
    root, summary = _quick_trace()
    alone = tracing.FinishedTrace(
        **{**summary.__dict__, "id": "c" * 32, "name": "alone", "ended_at": summary.started_at + 3}
    )
    tracing.record_spans([root], [summary, alone])
    assert tracing.get_trace(root.trace_id).summary.duration_ms == 0.25
    listed = {t.name: t.duration_ms for t in tracing.list_traces()}
    assert listed == {"quick": 0.25, "alone": 3.0}
    assert [r["duration_ms"] for r in tracing.trace_rows(trace_name="quick")] == [0.25]
    [row] = tracing.trace_rows(trace_name="alone")
    assert (row["duration_ms"], row["trace_id"]) == (3.0, "c" * 32)


def test_a_trace_is_linked_to_the_prompt_versions_its_spans_name(
    any_workspace: Workspace,
) -> None:
    from cauce.genai import prompts

    answer = prompts.register("answer", "Answer {{ question }}")
    root, summary = _quick_trace()
    named = {
        "cauce.prompt.version": "prompts:/answer/1",
        # MLflow's list: a version this workspace does not hold is no edge, and no error.
        "mlflow.linkedPrompts": json.dumps(
            [{"name": "answer", "version": "1"}, {"name": "elsewhere", "version": "4"}]
        ),
    }
    tracing.record_spans(
        [tracing.FinishedSpan(**{**root.__dict__, "attributes": named})], [summary]
    )
    assert tracing.get_trace(root.trace_id).prompts == ["prompts:/answer/1"]
    prompts.register("answer", "Reply to {{ question }}")
    tracing.link_prompts(root.trace_id, ["prompts:/answer/2", "prompts:/answer/1"])
    assert tracing.get_trace(root.trace_id).prompts == ["prompts:/answer/1", "prompts:/answer/2"]
    assert tracing.get_trace(root.trace_id).to_dict()["prompts"][0] == "prompts:/answer/1"
    alone = tracing.read_trace(root.trace_id[:8], with_spans=False)  # its summary, no spans
    assert (alone.summary.id, alone.spans, len(alone.prompts)) == (root.trace_id, [], 2)
    with pytest.raises(NotFound, match="no version 7"):
        tracing.link_prompts(root.trace_id, ["prompts:/answer/7"])
    with pytest.raises(InvalidInput, match=r"versions\.0"):
        tracing.link_prompts(root.trace_id, ["prompts:/answer@production"])
    from cauce.lineage.graph import walk

    graph = walk(any_workspace, "trace", root.trace_id, direction="upstream")
    assert {e.src.id for e in graph.edges if e.relation == "used_by"} == {
        answer.id,
        prompts.get_version("answer", 2).id,
    }


def test_traces_are_tagged_by_their_spans_and_afterwards_and_listed_by_tag(
    any_workspace: Workspace,
) -> None:
    with (
        tracing.tagged({"env": "prod", "arm": "b"}),
        tracing.span("answer") as prod,
        tracing.span("retrieval"),
    ):
        pass
    with tracing.tagged({"env": "dev"}), tracing.span("answer") as dev:
        pass
    root, summary = _quick_trace()  # another tracer's lists of tags: keys with no value
    listed = {"langfuse.trace.tags": ["golden", "beta"], "tag.tags": '["beta", "reviewed"]'}
    tracing.record_spans(
        [tracing.FinishedSpan(**{**root.__dict__, "attributes": listed})], [summary]
    )
    tracing.flush()
    assert tracing.get_trace(prod.trace_id).summary.tags == {"arm": "b", "env": "prod"}
    assert tracing.get_trace(root.trace_id).summary.tags == {
        "beta": "",
        "golden": "",
        "reviewed": "",
    }
    assert {t.id for t in tracing.list_traces(tag="env")} == {prod.trace_id, dev.trace_id}
    assert [t.id for t in tracing.list_traces(tag="env=prod")] == [prod.trace_id]
    assert [t.id for t in tracing.list_traces(tag="golden")] == [root.trace_id]
    assert tracing.list_traces(tag="env=test") == []
    # Set afterwards (a reviewer's verdict), on the start of the id as the lists print it.
    tagged = tracing.set_trace_tags(dev.trace_id[:8], {"verdict": "wrong", "env": "staging"})
    assert tagged.tags == {"env": "staging", "verdict": "wrong"}
    assert tracing.delete_trace_tag(dev.trace_id, "verdict").tags == {"env": "staging"}
    assert [t.id for t in tracing.list_traces(tag="env=staging")] == [dev.trace_id]
    with pytest.raises(NotFound, match="no tag 'verdict'"):
        tracing.delete_trace_tag(dev.trace_id, "verdict")
    with pytest.raises(NotFound):
        tracing.set_trace_tags("0" * 32, {"a": "b"})
    with pytest.raises(InvalidInput):
        tracing.list_traces(tag="=prod")
    with pytest.raises(InvalidInput), tracing.tagged({}):
        pass
    from cauce.lineage import audit

    actions = [e.action for e in audit.events(any_workspace, action="trace.*")]
    assert sorted(actions) == ["trace.tag", "trace.untag"]


def test_a_trace_made_in_a_run_is_linked_to_it(any_workspace: Workspace) -> None:
    """A root span started while a run is active links its trace to that run: listed by it,
    read with it and its experiment, an edge of the run's lineage. Outside a run, no link."""
    from cauce.lineage.graph import walk

    experiment = cauce.set_experiment("support-bot")
    with cauce.start_run() as run:
        with tracing.span("answer") as inside, tracing.span("retrieval"):
            pass
        with tracing.span("answer again") as again:
            pass
    with tracing.span("answer") as outside:
        pass
    tracing.flush()
    run_id = run.run_id
    assert {t.id for t in tracing.list_traces(run_id=run_id)} == {again.trace_id, inside.trace_id}
    found = tracing.get_trace(inside.trace_id)
    assert (found.run_id, found.summary.experiment_id) == (run_id, experiment.experiment_id)
    assert found.spans[1].attributes.get("cauce.run.id") is None  # the root carries it
    assert tracing.get_trace(outside.trace_id).run_id is None
    assert tracing.list_traces(run_id="0" * 32) == []
    # Filed under the run's experiment; a trace filed under none is the default experiment's.
    assert {t.id for t in tracing.list_traces(experiment="support-bot")} == {
        inside.trace_id,
        again.trace_id,
    }
    default = any_workspace.settings.experiment
    cauce.set_experiment(default)
    assert [t.id for t in tracing.list_traces(experiment=default)] == [outside.trace_id]
    with pytest.raises(NotFound, match="experiment 'nope'"):
        tracing.list_traces(experiment="nope")
    graph = walk(any_workspace, "run", run_id)
    assert {n.id for n in graph.nodes if n.kind == "trace"} == {inside.trace_id, again.trace_id}
    # Linked afterwards (an evaluation's rows, answered outside its run): filed under it too.
    tracing.link_traces_to_run(run_id, [outside.trace_id, "e" * 32])  # one not stored yet
    assert len(tracing.list_traces(run_id=run_id)) == 3
    assert tracing.get_trace(outside.trace_id).summary.experiment_id == experiment.experiment_id
    with pytest.raises(NotFound, match="run '0000"):
        tracing.link_traces_to_run("0" * 32, [outside.trace_id])


def test_cli_lists_the_traces_of_a_run(workspace: Workspace) -> None:
    with cauce.start_run() as run, tracing.span("answer") as inside:
        pass
    with tracing.span("answer"):
        pass
    tracing.flush()
    home = Path(workspace.settings.root)
    listed = run_cli(home, "traces", "list", "--run", run.run_id[:8], "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == [inside.trace_id]
    assert f"run: {run.run_id}" in run_cli(home, "traces", "show", inside.trace_id).stdout
    run_cli(home, "traces", "expect", inside.trace_id[:8], "expected_response", "It ships.")
    run_cli(home, "traces", "expect", inside.trace_id[:8], "expected_ids", '["doc-3"]')
    shown = run_cli(home, "traces", "show", inside.trace_id).stdout
    assert 'expected: expected_response="It ships." expected_ids=["doc-3"]' in shown
    # Deleted: the one named by the start of its id, then every trace older than a window.
    deleted = run_cli(home, "traces", "delete", inside.trace_id[:8])
    assert deleted.stdout.strip() == "Deleted 1 trace."
    assert run_cli(home, "traces", "delete", "--older-than", "0s").stdout.strip() == (
        "Deleted 1 trace."
    )
    assert tracing.list_traces() == []
    nothing = run_cli(home, "traces", "delete", check=False)
    assert_one_line_error(nothing, "needs trace_ids, before_ms, session_id or user_id")
    bad = run_cli(home, "traces", "delete", "--older-than", "soon", check=False)
    assert_one_line_error(bad, "--older-than")


def test_traces_are_deleted_with_everything_recorded_on_them(any_workspace: Workspace) -> None:
    """A user's traces (a request to erase them), those older than a retention window, those
    named: their spans, tags, feedback and lineage go too, in one audited call; the rest stay."""
    from cauce.lineage import audit
    from cauce.lineage.graph import walk

    cauce.prompts.register("greet", "Hello {{ name }}")
    made = {}
    for name, user in (("old", "bo"), ("ana's", "ana"), ("ana's again", "ana"), ("new", "bo")):
        with (
            tracing.session("chat-1", user_id=user),
            tracing.span(name) as root,
            tracing.span("child"),
        ):
            pass
        made[name] = root.trace_id
        time.sleep(0.002)  # one a millisecond at least: "old" is the oldest
    tracing.flush()
    ana = made["ana's"]
    tracing.set_trace_tags(ana, {"verdict": "good"})
    tracing.log_feedback(ana, "helpful", 1.0)
    tracing.link_prompts(ana, ["prompts:/greet/1"])

    assert tracing.delete_traces(user_id="ana") == 2
    assert {t.name for t in tracing.list_traces()} == {"old", "new"}
    with pytest.raises(NotFound):
        tracing.get_trace(ana)
    assert tracing.list_traces(tag="verdict") == []
    version = cauce.prompts.get_version("greet", 1)
    assert walk(any_workspace, "prompt_version", version.id).edges == []  # no edge to it left

    cutoff = tracing.get_trace(made["new"]).summary.started_at
    assert tracing.delete_traces(before_ms=cutoff) == 1  # "old", started before "new"
    assert [t.name for t in tracing.list_traces()] == ["new"]
    assert tracing.delete_traces([made["new"], "f" * 32]) == 1  # one not stored: none to delete
    assert tracing.list_traces() == []
    assert tracing.delete_traces([made["new"]]) == 0  # again: nothing changes

    events = audit.events(any_workspace, action="trace.delete")
    assert sorted((e.entity_id, e.after["deleted"]) for e in events) == sorted(
        [("*", 2), (made["old"], 1), (made["new"], 1)]
    )
    with pytest.raises(InvalidInput, match="needs trace_ids, before_ms, session_id or user_id"):
        tracing.delete_traces()
    with pytest.raises(InvalidInput, match=r"trace_ids\.0"):
        tracing.delete_traces(["abc"])


def test_deleting_keeps_to_an_experiment_and_the_oldest_first(any_workspace: Workspace) -> None:
    cauce.set_experiment("support-bot")
    ids = []
    with cauce.start_run():
        for step in range(3):
            with tracing.span(f"in run {step}") as root:
                pass
            ids.append(root.trace_id)
            time.sleep(0.002)
    with tracing.span("outside") as outside:
        pass
    tracing.flush()
    now = int(time.time() * 1000) + 1
    assert tracing.delete_traces(before_ms=now, experiment="support-bot", max_traces=2) == 2
    assert {t.id for t in tracing.list_traces()} == {ids[2], outside.trace_id}
    # Two calls deleting the same traces at once (two agents' retention) count each once.
    from together import at_once

    counts = at_once([lambda: tracing.delete_traces(before_ms=now)] * 2)
    assert sorted(counts) == [0, 2] and tracing.list_traces() == []


def test_the_agent_deletes_the_traces_older_than_the_workspace_keeps_them(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cauce.automation import agent

    root, summary = _quick_trace()
    hour_ms = 3_600_000
    now = summary.started_at + 3 * hour_ms
    for index, age_hours in enumerate((5, 4, 2, 0)):  # two older than the 3 hours kept
        shift = (3 - age_hours) * hour_ms
        trace_id = f"{index + 1:032x}"
        span = tracing.FinishedSpan(**{
            **root.__dict__, "trace_id": trace_id, "started_ns": root.started_ns + shift * 10**6,
            "ended_ns": root.ended_ns + shift * 10**6,
        })  # fmt: skip
        tracing.record_spans([span], [tracing.FinishedTrace(**{
            **summary.__dict__, "id": trace_id, "started_at": summary.started_at + shift,
            "ended_at": summary.ended_at + shift,
        })])  # fmt: skip
    assert agent.Agent(workspace).expire_traces(now=now) == 0  # no retention set: all kept
    ws = _reopen(monkeypatch, CAUCE_TRACE_RETENTION="3h")
    monkeypatch.setattr(agent, "RETENTION_BATCH", 1)  # a backlog goes a batch at a time
    assert agent.Agent(ws).expire_traces(now=now) == 2
    assert sorted(t.id for t in tracing.list_traces()) == [f"{3:032x}", f"{4:032x}"]
    assert agent.Agent(ws).expire_traces(now=now) == 0
    with pytest.raises(InvalidInput, match="CAUCE_TRACE_RETENTION: not a duration"):
        _reopen(monkeypatch, CAUCE_TRACE_RETENTION="a month")


def test_cli_lists_and_shows_the_tree(workspace: Workspace, upstream: Upstream) -> None:
    llm = _connect(upstream.url, echo={"input": 1.0, "output": 1.0})
    with tracing.span("answer") as root:
        with tracing.span("retrieval docs", operation="retrieval"):
            pass
        llm.chat(QUESTION)
        root.evaluation("relevance", 5, "pass")
    tracing.flush()
    home = Path(workspace.settings.root)
    quick, quick_summary = _quick_trace()
    tracing.record_spans([quick], [quick_summary])
    listed = run_cli(home, "traces", "list").stdout
    assert root.trace_id in listed and "4/5" in listed
    assert "0.25 ms" in listed  # the quick one, read from its root span (not "0 ms")
    shown = run_cli(home, "traces", "show", root.trace_id[:10]).stdout
    assert "answer" in shown and "retrieval docs" in shown and "chat echo" in shown
    assert "tokens 4/5" in shown and "relevance=5.0" in shown
    cauce.prompts.register("answer", "Answer {{ question }}")
    tracing.link_prompts(quick.trace_id, ["prompts:/answer/1"])
    assert "prompts: prompts:/answer/1" in run_cli(home, "traces", "show", quick.trace_id).stdout
    tagged = run_cli(home, "traces", "tag", quick.trace_id[:8], "verdict=good", "golden").stdout
    assert f"Trace {quick.trace_id}'s tags: golden verdict=good" in tagged
    assert "golden" not in run_cli(home, "traces", "tag", quick.trace_id, "-r", "golden").stdout
    assert "tags: verdict=good" in run_cli(home, "traces", "show", quick.trace_id).stdout
    no_tag = run_cli(home, "traces", "tag", quick.trace_id, check=False)
    assert_one_line_error(no_tag, "give tags as KEY=VALUE (or KEY), or --remove KEY")
    only = run_cli(home, "traces", "list", "--tag", "verdict=good").stdout
    assert quick.trace_id[:8] in only and root.trace_id[:8] not in only
    as_json = json.loads(run_cli(home, "traces", "show", root.trace_id, "--json").stdout)
    assert [s["name"] for s in as_json["spans"]] == ["answer", "retrieval docs", "chat echo"]
    missing = run_cli(home, "traces", "show", "0" * 32, check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_traces_become_an_evaluation_dataset(workspace: Workspace, upstream: Upstream) -> None:
    llm = _connect(upstream.url)
    for question in ("mail ana@example.com", "what is drift"):
        with tracing.span("qa", operation="invoke_agent") as root:
            root.content("cauce.input", {"question": question})
            answer = llm.chat([{"role": "user", "content": question}])
            root.content("cauce.output", {"answer": answer.text})
            root.evaluation("relevance", 4 if "drift" in question else 2, None)
    llm.chat([{"role": "user", "content": "a bare call"}])
    version = tracing.to_dataset("qa-traffic", trace_name="qa")
    frame = cauce.data.load(version.ref)
    assert list(frame["inputs.question"]) == ["mail ana@example.com", "what is drift"]
    assert list(frame["outputs.answer"]) == ["echo: mail ana@example.com", "echo: what is drift"]
    assert list(frame["eval.relevance"]) == [2.0, 4.0]
    assert list(frame["output_tokens"]) == [3, 4]
    bare = cauce.data.load(tracing.to_dataset("bare", trace_name="chat echo").ref)
    assert (bare.loc[0, "inputs.question"], bare.loc[0, "outputs.answer"]) == (
        "a bare call",
        "echo: a bare call",
    )
    # A reviewer's tag picks the traces of a golden set.
    drift = next(t for t in tracing.list_traces(name="qa") if t.scores["relevance"] == 4.0)
    tracing.set_trace_tags(drift.id, {"golden": ""})
    golden = cauce.data.load(tracing.to_dataset("qa-golden", tag="golden").ref)
    assert list(golden["trace_id"]) == [drift.id]
    home = Path(workspace.settings.root)
    printed = run_cli(home, "traces", "to-dataset", "everything").stdout
    assert "Registered 3 traces as everything@1" in printed
    tagged = run_cli(home, "traces", "to-dataset", "golden-cli", "--tag", "golden").stdout
    assert "Registered 1 traces as golden-cli@1" in tagged
    nothing = run_cli(home, "traces", "to-dataset", "none", "--status", "error", check=False)
    assert nothing.returncode == 1 and "no traces match" in nothing.stderr


def test_spans_made_here_are_stored_by_the_server_and_read_back(
    remote_workspace: Workspace,
) -> None:
    import httpx

    from remote import server_side

    with (
        tracing.span("answer", operation="invoke_agent") as root,
        tracing.span("retrieval docs", operation="retrieval") as child,
    ):
        child.set("gen_ai.data_source.id", "docs@1")
    tracing.flush()
    answer = httpx.get(f"{remote_workspace.settings.server_url}/api/v1/traces/{root.trace_id}")
    assert answer.status_code == 200
    assert [s["name"] for s in answer.json()["spans"]] == ["answer", "retrieval docs"]
    assert answer.json()["summary"]["span_count"] == 2
    stored = tracing.get_trace(root.trace_id, workspace=server_side(remote_workspace))
    assert stored.spans[1].attributes["gen_ai.data_source.id"] == "docs@1"
    again = tracing.FinishedSpan(
        trace_id=root.trace_id, span_id=child.span_id, parent_id=root.span_id, name="renamed",
        kind="internal", operation=None, started_ns=1, ended_ns=2, status="ok",
        status_message=None, input_tokens=None, output_tokens=None, cost=None, attributes={},
        events=[],
    )  # fmt: skip
    tracing.record_spans([again])
    assert [s.name for s in tracing.get_trace(root.trace_id).spans] == ["answer", "retrieval docs"]
    with pytest.raises(InvalidInput, match=r"spans\.0\.span_id: 16 lowercase hex") as caught:
        tracing.record_spans([again.__class__(**{**again.__dict__, "span_id": "XYZ"})])
    assert caught.value.details["field"] == "spans.0.span_id"
    with pytest.raises(InvalidInput, match=r"spans\.0\.ended_ns is before"):
        tracing.record_spans([again.__class__(**{**again.__dict__, "ended_ns": 0})])


def test_traces_belong_to_the_session_and_user_they_were_made_in(any_workspace: Workspace) -> None:
    with tracing.session("chat-1", user_id="ana"):
        for turn in ("hello", "and then"):
            with tracing.span("turn") as first, tracing.span("retrieval docs"):
                first.content("cauce.input", {"question": turn})
    with (
        pytest.raises(ValueError),
        tracing.session("chat-2", user_id="bo"),
        tracing.span("turn"),
    ):
        raise ValueError("the model is down")
    # A session named inside the root span still counts.
    with tracing.span("outer") as outer, tracing.session("chat-2"), tracing.span("inner"):
        pass
    time.sleep(0.002)  # the latest session by a clear millisecond
    with tracing.span("tagged", attributes={"session.id": "own", "user.id": "cy"}) as own:
        pass
    with tracing.span("alone", attributes={"session.id": "", "user.id": "u" * 300}) as alone:
        pass

    in_one = tracing.list_traces(session_id="chat-1")
    assert [(t.name, t.user_id) for t in in_one] == [("turn", "ana"), ("turn", "ana")]
    assert in_one[0].started_at >= in_one[1].started_at
    assert [t.name for t in tracing.list_traces(user_id="bo")] == ["turn"]
    assert tracing.get_trace(outer.trace_id).summary.session_id == "chat-2"
    assert tracing.get_trace(own.trace_id).summary.user_id == "cy"
    # An empty id is none, a long one is cut: the batch is stored all the same.
    assert tracing.get_trace(alone.trace_id).summary.session_id is None
    assert tracing.get_trace(alone.trace_id).summary.user_id == "u" * 256
    assert tracing.list_traces(session_id="chat-1", user_id="bo") == []

    listed = tracing.list_sessions()
    assert listed[0].id == "own"  # the latest trace first
    sessions = {s.id: s for s in listed}
    assert (sessions["chat-1"].traces, sessions["chat-1"].errors) == (2, 0)
    assert sessions["chat-1"].user_ids == ["ana"]
    assert (sessions["chat-2"].traces, sessions["chat-2"].errors) == (2, 1)
    assert sessions["chat-2"].user_ids == ["bo"]
    assert sessions["chat-1"].first_at <= sessions["chat-1"].last_at
    assert [s.id for s in tracing.list_sessions(user_id="bo")] == ["chat-2"]
    people = {u.id: u for u in tracing.list_users()}
    assert set(people) == {"u" * 256, "cy", "bo", "ana"}
    assert (people["ana"].traces, people["ana"].sessions, people["ana"].errors) == (2, 1, 0)
    assert (people["bo"].traces, people["bo"].errors) == (1, 1)
    assert people["u" * 256].sessions == 0

    with pytest.raises(InvalidInput, match="give a session_id, a user_id or both"):
        tracing.session().__enter__()
    with pytest.raises(InvalidInput, match="session_id: a text of 1 to 256 characters"):
        tracing.session("x" * 257).__enter__()


def test_traces_are_paged_newest_first_by_the_last_one_seen(any_workspace: Workspace) -> None:
    """Five traces, three of them started in the same millisecond: pages of two, each asked
    for with the last trace of the one before, list every trace once, in order."""
    root, summary = _quick_trace()
    rows, summaries = [], []
    for n, at in enumerate((5, 4, 4, 4, 1)):
        trace_id = f"{n + 1:032x}"
        rows.append(tracing.FinishedSpan(**{**root.__dict__, "trace_id": trace_id}))
        summaries.append(
            tracing.FinishedTrace(
                **{
                    **summary.__dict__,
                    "id": trace_id,
                    "started_at": summary.started_at + at,
                    "ended_at": summary.ended_at + at,
                }
            )
        )
    tracing.record_spans(rows, summaries)
    seen: list[str] = []
    page = tracing.list_traces(limit=2)
    while page:
        seen += [t.id for t in page]
        page = tracing.list_traces(limit=2, before=page[-1].id)
    assert seen == [f"{n:032x}" for n in (1, 2, 3, 4, 5)]
    recent = tracing.list_traces(since_ms=summary.started_at + 4)
    assert [t.id for t in recent] == seen[:4]
    with pytest.raises(NotFound, match=r"trace .f+. does not exist"):
        tracing.list_traces(before="f" * 32)


def test_sessions_and_users_are_paged_and_summed_over_a_window(any_workspace: Workspace) -> None:
    """Sessions and users, the latest first, paged by the last one seen (ties broken by id);
    ``since_ms`` sums only the traces started then or later."""
    root, summary = _quick_trace()
    t0 = summary.started_at
    made = [  # (session, user, started ms after t0, status)
        ("old", "ana", 0, "ok"),
        ("both", "ana", 1, "error"),
        ("both", "bo", 10, "ok"),
        ("tie-a", "cy", 8, "ok"),
        ("tie-b", "cy", 8, "ok"),
    ]
    rows, summaries = [], []
    for n, (session, user, at, status) in enumerate(made):
        trace_id = f"{n + 1:032x}"
        rows.append(tracing.FinishedSpan(**{**root.__dict__, "trace_id": trace_id}))
        summaries.append(
            tracing.FinishedTrace(
                **{
                    **summary.__dict__,
                    "id": trace_id,
                    "started_at": t0 + at,
                    "ended_at": t0 + at,
                    "status": status,
                    "session_id": session,
                    "user_id": user,
                    "input_tokens": 10,
                }
            )
        )
    tracing.record_spans(rows, summaries)

    seen: list[str] = []
    page = tracing.list_sessions(limit=2)
    while page:
        seen += [s.id for s in page]
        page = tracing.list_sessions(limit=2, before=page[-1].id)
    assert seen == ["both", "tie-a", "tie-b", "old"]
    whole = {s.id: s for s in tracing.list_sessions()}
    assert (whole["both"].traces, whole["both"].errors, whole["both"].user_ids) == (
        2, 1, ["ana", "bo"]
    )  # fmt: skip
    recent = {s.id: s for s in tracing.list_sessions(since_ms=t0 + 5)}
    assert set(recent) == {"both", "tie-a", "tie-b"}
    both = recent["both"]
    assert (both.traces, both.errors, both.input_tokens, both.user_ids) == (1, 0, 10, ["bo"])
    assert both.first_at == both.last_at == t0 + 10
    assert [s.id for s in tracing.list_sessions(user_id="bo", since_ms=t0 + 5)] == ["both"]
    assert tracing.list_sessions(user_id="ana", since_ms=t0 + 5) == []  # ana's trace is older
    assert [s.id for s in tracing.list_sessions(since_ms=t0 + 5, before="tie-a")] == ["tie-b"]

    people: list[str] = []
    page_of_users = tracing.list_users(limit=1)
    while page_of_users:
        people += [u.id for u in page_of_users]
        page_of_users = tracing.list_users(limit=1, before=page_of_users[-1].id)
    assert people == ["bo", "cy", "ana"]
    ana = tracing.list_users(before="cy")[0]
    assert (ana.id, ana.traces, ana.sessions, ana.errors) == ("ana", 2, 2, 1)
    assert [u.id for u in tracing.list_users(since_ms=t0 + 5)] == ["bo", "cy"]
    with pytest.raises(NotFound, match="no session nope"):
        tracing.list_sessions(before="nope")
    with pytest.raises(NotFound, match="no user nope"):
        tracing.list_users(before="nope")


def test_rows_within_one_millisecond_come_in_the_order_their_roots_started(
    any_workspace: Workspace,
) -> None:
    """A conversation's turns read in order even when two start in the same millisecond and
    the later one's id sorts first."""
    root, summary = _quick_trace()
    first, second = "f" * 32, "1" * 32
    tracing.record_spans(
        [
            tracing.FinishedSpan(**{**root.__dict__, "trace_id": first, "name": "asked"}),
            tracing.FinishedSpan(
                **{
                    **root.__dict__,
                    "trace_id": second,
                    "name": "asked again",
                    "started_ns": root.started_ns + 500_000,
                    "ended_ns": root.ended_ns + 500_000,
                }
            ),
        ],
        [
            tracing.FinishedTrace(**{**summary.__dict__, "id": first, "session_id": "s"}),
            tracing.FinishedTrace(**{**summary.__dict__, "id": second, "session_id": "s"}),
        ],
    )
    assert [r["trace_id"] for r in tracing.trace_rows(session_id="s")] == [first, second]


def test_cli_lists_sessions_and_pages_traces(workspace: Workspace) -> None:
    for session, user in (("chat-1", "ana"), ("chat-1", "ana"), ("chat-2", "bo")):
        with tracing.session(session, user_id=user), tracing.span("turn"):
            pass
        time.sleep(0.002)  # each trace in a millisecond of its own: chat-2 is the latest
    tracing.flush()  # the CLI reads the store from another process
    home = Path(workspace.settings.root)
    listed = run_cli(home, "traces", "sessions").stdout
    assert re.search(r"chat-2[│\s]+bo[│\s]+1[│\s]+0", listed)
    assert re.search(r"chat-1[│\s]+ana[│\s]+2[│\s]+0", listed)
    only = run_cli(home, "traces", "sessions", "--user", "ana").stdout
    assert "chat-1" in only and "chat-2" not in only
    newest = tracing.list_traces(limit=3)
    first = run_cli(home, "traces", "list", "-n", "2").stdout
    assert newest[0].id in first and newest[2].id not in first
    assert f"--before {newest[1].id}" in " ".join(first.split())
    rest = run_cli(home, "traces", "list", "-n", "2", "--before", newest[1].id).stdout
    assert newest[2].id in rest and "--before" not in rest
    of_session = run_cli(home, "traces", "list", "--session", "chat-1").stdout
    assert of_session.count("chat-1") == 2 and "chat-2" not in of_session
    shown = run_cli(home, "traces", "show", tracing.list_traces(user_id="bo")[0].id).stdout
    assert "session chat-2 · user bo" in shown
    none = run_cli(home, "traces", "sessions", "--user", "nobody").stdout
    assert "No sessions match." in none
    turns = run_cli(home, "traces", "to-dataset", "chat-1-turns", "--session", "chat-1").stdout
    assert "Registered 2 traces as chat-1-turns@1" in turns
    assert newest[0].id in run_cli(home, "traces", "list", "--since", "1h").stdout
    future = run_cli(home, "traces", "to-dataset", "x", "--since", "0s", check=False)
    assert future.returncode == 1 and "no traces match" in future.stderr
    bad = run_cli(home, "traces", "list", "--since", "soon", check=False)
    assert bad.returncode == 1 and "--since: not a duration: 'soon'" in bad.stderr
    people = run_cli(home, "traces", "users").stdout
    assert re.search(r"bo[│\s]+1[│\s]+1[│\s]+0", people)  # 1 session, 1 trace, 0 errors
    assert re.search(r"ana[│\s]+1[│\s]+2[│\s]+0", people)
    page = run_cli(home, "traces", "sessions", "-n", "1", "--since", "1h").stdout
    assert "chat-2" in page and "chat-1" not in page
    assert "--before chat-2" in " ".join(page.split())
    rest = run_cli(home, "traces", "sessions", "-n", "2", "--before", "chat-2").stdout
    assert "chat-1" in rest and "--before" not in rest
    later = run_cli(home, "traces", "users", "--since", "0s").stdout
    assert "No users match." in later
    after_bo = run_cli(home, "traces", "users", "--before", "bo").stdout
    assert re.search(r"ana[│\s]+1[│\s]+2[│\s]+0", after_bo)
    assert not re.search(r"bo[│\s]+1[│\s]+1[│\s]+0", after_bo)


def test_scores_are_summed_by_name_each_trace_counting_its_latest_result(
    any_workspace: Workspace,
) -> None:
    made = []
    for n, (session, user) in enumerate([("c1", "ana"), ("c1", "ana"), ("c2", "bo")]):
        with tracing.session(session, user_id=user), tracing.span("qa") as root:
            root.evaluation("relevance", 0.5 + n * 0.25, None)  # an evaluator's, while traced
        made.append(root.trace_id)
    tracing.log_feedback(made[0], "helpful", 0, "wrong")
    tracing.log_feedback(made[0], "helpful", 1, "right")  # corrected: the latest counts
    tracing.log_feedback(made[1], "helpful", 1, "right")
    tracing.log_feedback(made[2], "helpful", None, "unsure")
    found = {s.name: s for s in tracing.list_scores()}
    helpful = found["helpful"]
    assert (helpful.traces, helpful.scored, helpful.mean, helpful.min, helpful.max) == (
        3, 2, 1.0, 1.0, 1.0
    )  # fmt: skip
    assert helpful.labels == {"right": 2, "unsure": 1}
    relevance = found["relevance"]
    assert (relevance.traces, relevance.scored, relevance.labels) == (3, 3, {})
    assert (relevance.mean, relevance.min, relevance.max) == (0.75, 0.5, 1.0)
    of_bo = tracing.list_scores(user_id="bo")
    assert [(s.name, s.traces, s.labels) for s in of_bo] == [
        ("helpful", 1, {"unsure": 1}),
        ("relevance", 1, {}),
    ]
    assert {s.name: s.traces for s in tracing.list_scores(session_id="c1")} == {
        "helpful": 2,
        "relevance": 2,
    }
    assert tracing.list_scores(name="other") == []
    assert tracing.list_scores(since_ms=int(time.time() * 1000) + 60_000) == []
    # An A/B test's arms, as tags: each arm's scores apart.
    tracing.set_trace_tags(made[2], {"arm": "b"})
    arm_b = {s.name: (s.traces, s.mean) for s in tracing.list_scores(tag="arm=b")}
    assert arm_b == {"helpful": (1, None), "relevance": (1, 1.0)}
    assert tracing.list_scores(tag="arm=a") == []


def test_feedback_lands_on_the_traces_root_and_becomes_a_dataset_column(
    workspace: Workspace,
) -> None:
    for question in ("hello", "where is my parcel"):
        with tracing.span("qa", operation="invoke_agent") as root, tracing.span("chat"):
            root.content("cauce.input", {"question": question})
    first, second = (t.id for t in tracing.list_traces())
    tracing.log_feedback(first, "helpful", 1)
    home = Path(workspace.settings.root)
    said = run_cli(  # by the start of its id, as the lists print it in a narrow terminal
        home, "traces", "feedback", second[:8], "helpful", "--score", "0", "--label", "wrong"
    )
    assert said.stdout.strip() == f"Recorded helpful on trace {second}"
    [root, _] = tracing.get_trace(second).spans
    assert root.events[0]["attributes"]["gen_ai.evaluation.score.label"] == "wrong"
    tracing.log_feedback(second, "helpful", None, "unclear")  # the latest of a name counts
    assert {t.id: t.scores for t in tracing.list_traces()} == {
        first: {"helpful": 1.0},
        second: {"helpful": "unclear"},
    }
    listed = " ".join(run_cli(home, "traces", "list").stdout.split())
    assert "helpful=1" in listed and "helpful=unclear" in listed
    summed = run_cli(home, "traces", "scores", "--name", "qa").stdout
    # helpful: 2 traces, 1 scored, mean, least and most 1, the latest label of the second.
    assert re.search(r"helpful[│\s]+2[│\s]+1[│\s]+1[│\s]+1[│\s]+1[│\s]+unclear 1", summed)
    none = run_cli(home, "traces", "scores", "--user", "nobody").stdout
    assert "No scores match." in none
    tracing.set_trace_tags(first, {"arm": "a"})
    arm_a = run_cli(home, "traces", "scores", "--tag", "arm=a").stdout
    assert re.search(r"helpful[│\s]+1[│\s]+1[│\s]+1", arm_a)
    # The latest result of a name: the second's label-only correction leaves no score.
    frame = cauce.data.load(tracing.to_dataset("rated", trace_name="qa").ref)
    rated = frame.set_index("trace_id")
    assert rated.loc[first, "eval.helpful"] == 1.0 and pd.isna(rated.loc[second, "eval.helpful"])
    assert pd.isna(rated.loc[first, "eval.helpful.label"])
    assert rated.loc[second, "eval.helpful.label"] == "unclear"
    with pytest.raises(InvalidInput, match="feedback needs a score, a label or both"):
        tracing.log_feedback(first, "helpful")
    with pytest.raises(InvalidInput, match="trace_id: 32 lowercase hex"):
        tracing.log_feedback(first[:8], "helpful", 1)
    with pytest.raises(InvalidInput, match=r"'helpful\.label' ends in '\.label'") as caught:
        tracing.log_feedback(first, "helpful.label", 1)  # it would be helpful's label column
    assert caught.value.details == {"field": "name"}
    label = run_cli(home, "traces", "feedback", first, "tone.label", "--score", "1", check=False)
    assert_one_line_error(label, "name: 'tone.label' ends in '.label'")
    missing = run_cli(home, "traces", "feedback", "0" * 32, "helpful", "--score", "1", check=False)
    assert missing.returncode == 1 and "no trace 000" in missing.stderr


def test_expectations_are_the_ground_truth_a_traces_dataset_row_carries(
    any_workspace: Workspace,
) -> None:
    with tracing.span("qa") as root, tracing.span("retrieval") as retrieval:
        pass
    tracing.log_expectation(root.trace_id, "expected_response", "Tuesday")
    tracing.log_expectation(root.trace_id, "expected_response", "Monday")  # corrected
    tracing.log_expectation(root.trace_id, "expected_ids", ["doc-1", "doc-2"])
    tracing.log_expectation(root.trace_id, "relevant", True, span_id=retrieval.span_id)
    [row] = tracing.trace_rows()
    assert row["expectations.expected_response"] == "Monday"  # the latest of a name
    assert json.loads(row["expectations.expected_ids"]) == ["doc-1", "doc-2"]
    assert "expectations.relevant" not in row  # on a span of its own, not the root
    stored = tracing.get_trace(root.trace_id).spans[1].events
    assert [e["attributes"]["cauce.expectation.value"] for e in stored] == ["true"]
    with pytest.raises(InvalidInput, match="value: a JSON value"):
        tracing.log_expectation(root.trace_id, "when", {1, 2})
    with pytest.raises(NotFound, match="no trace"):
        tracing.log_expectation("0" * 32, "expected_response", "x")
    with pytest.raises(NotFound, match="has no span"):
        tracing.log_expectation(root.trace_id, "x", 1, span_id="0" * 16)
