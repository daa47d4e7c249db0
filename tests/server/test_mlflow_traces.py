"""MLflow's client reading traces back from ``cauce server``: ``mlflow.get_trace`` and
``mlflow.search_traces``, over traces an MLflow application sent and traces Cauce made."""

from __future__ import annotations

import os
from typing import Any

import pytest

import cauce
from cauce.genai import tracing
from mlflow_client import error_code, mlflow_app

MLFLOW_APP = """
import time

import mlflow

@mlflow.trace(span_type="LLM")
def generate(question):
    if question == "crash":
        raise ValueError("the model is down")
    return {"answer": question.upper()}

@mlflow.trace(span_type="AGENT")
def agent(question, user):
    mlflow.update_current_trace(
        metadata={"mlflow.trace.session": "chat-3", "mlflow.trace.user": user},
        tags={"env": "prod" if user == "ana" else "dev"},
    )
    print(mlflow.get_current_active_span().trace_id)
    return generate(question)

agent("where is my parcel?", "ana")
time.sleep(0.01)  # listed newest first: one trace a millisecond at most
agent("and my refund?", "bo")
time.sleep(0.01)
try:
    agent("crash", "ana")
except ValueError:
    pass
mlflow.flush_trace_async_logging()
"""


@pytest.fixture
def sent(mlflow: Any) -> list[str]:
    """The ids of the three traces an MLflow application sent to the server: ana's, bo's,
    then ana's that failed."""
    done = mlflow_app(MLFLOW_APP, MLFLOW_TRACKING_URI=os.environ["MLFLOW_TRACKING_URI"])
    return done.stdout.split()


def test_mlflow_get_trace_reads_an_mlflow_trace_back_whole(mlflow: Any, sent: list[str]) -> None:
    trace = mlflow.get_trace(sent[0])
    assert trace.info.trace_id == sent[0] and trace.info.state == "OK"
    assert trace.info.trace_metadata["mlflow.trace.user"] == "ana"
    assert trace.info.tags["env"] == "prod"
    root, child = sorted(trace.data.spans, key=lambda s: s.start_time_ns)
    assert (root.name, root.span_type, root.parent_id) == ("agent", "AGENT", None)
    assert (child.name, child.span_type, child.parent_id) == ("generate", "LLM", root.span_id)
    assert root.inputs == {"question": "where is my parcel?", "user": "ana"}
    assert child.outputs == {"answer": "WHERE IS MY PARCEL?"}
    assert trace.data.request == '{"question": "where is my parcel?", "user": "ana"}'
    assert root.end_time_ns >= child.end_time_ns > child.start_time_ns >= root.start_time_ns

    failed = mlflow.get_trace(sent[2])
    assert failed.info.state == "ERROR"
    error = next(s for s in failed.data.spans if s.name == "generate")
    assert error.status.status_code == "ERROR"
    assert "the model is down" in error.status.description
    assert any(e.name == "exception" for e in error.events)

    with pytest.raises(mlflow.MlflowException) as unknown:
        mlflow.MlflowClient().get_trace("tr-" + "f" * 32)
    assert error_code(unknown) == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_search_traces_finds_them_by_its_filters(mlflow: Any, sent: list[str]) -> None:
    found = mlflow.search_traces(return_type="list")
    assert [t.info.trace_id for t in found] == sent[::-1]  # newest first
    assert all(len(t.data.spans) == 2 for t in found)

    frame = mlflow.search_traces()
    assert list(frame["trace_id"]) == sent[::-1]
    assert frame["response"].iloc[1] == {"answer": "AND MY REFUND?"}

    def ids(filter_string: str) -> list[str]:
        traces = mlflow.search_traces(filter_string=filter_string, return_type="list")
        return [t.info.trace_id for t in traces]

    assert ids("tags.env = 'prod'") == [sent[2], sent[0]]
    assert ids("trace.status = 'ERROR'") == [sent[2]]
    assert ids("attributes.status = 'OK' AND tags.`env` = 'prod'") == [sent[0]]
    assert ids("metadata.`mlflow.trace.user` = 'bo'") == [sent[1]]
    assert ids("request_metadata.`mlflow.trace.session` = 'chat-3'") == sent[::-1]
    assert ids("trace.name = 'agent' and tags.env = 'dev'") == [sent[1]]
    second = mlflow.get_trace(sent[1]).info.request_time
    assert ids(f"trace.timestamp_ms >= {second}") == [sent[2], sent[1]]
    assert ids("trace.status = 'IN_PROGRESS'") == []

    infos = mlflow.search_traces(include_spans=False, return_type="list")
    assert [len(t.data.spans) for t in infos] == [0, 0, 0]


def test_mlflow_search_traces_pages_through_them(mlflow: Any, sent: list[str]) -> None:
    client = mlflow.MlflowClient()
    pages, token = [], None
    while True:
        page = client.search_traces(locations=["0"], max_results=2, page_token=token)
        pages.append([t.info.trace_id for t in page])
        token = page.token
        if token is None:
            break
    assert pages == [sent[:0:-1], sent[:1]]


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("span.name = 'generate'", None),
        ("tags.env = 'prod' OR tags.env = 'dev'", None),
        ("tags.env != 'prod'", None),
        ("tags.env = 'prod' AND tags.team = 'ml'", None),
        ("trace.timestamp_ms < 5", None),
        ("trace.name = 'agent' AND", None),
        ("tags.env", None),
        (None, ["execution_time_ms DESC"]),
    ],
)
def test_what_cauce_cannot_search_by_is_refused_by_name(
    mlflow: Any, filter_string: str | None, order_by: list[str] | None
) -> None:
    with pytest.raises(mlflow.MlflowException) as refused:
        mlflow.search_traces(filter_string=filter_string, order_by=order_by)
    assert error_code(refused) == "INVALID_PARAMETER_VALUE"
    assert ("filter" if filter_string else "order_by") in refused.value.message


def test_a_trace_cauce_made_reads_in_mlflow_with_mlflow_names(mlflow: Any) -> None:
    """Cauce's own spans carry Cauce's and OpenTelemetry's names: MLflow's client reads their
    input, output and type under its own."""
    with tracing.span("answer", operation="invoke_agent") as root:
        root.content("cauce.input", {"question": "where is my parcel?"})
        with tracing.span("chat tiny-model", operation="chat") as chat:
            chat.usage(12, 3, 0.001)
            chat.evaluation("grounded", 0.9, "yes")
        root.content("cauce.output", "It ships tomorrow.")
    tracing.flush()

    trace = mlflow.get_trace(f"tr-{root.trace_id}")
    spans = {s.name: s for s in trace.data.spans}
    assert spans["answer"].span_type == "AGENT"
    assert spans["answer"].inputs == {"question": "where is my parcel?"}
    assert spans["answer"].outputs == "It ships tomorrow."
    assert spans["chat tiny-model"].span_type == "CHAT_MODEL"
    assert spans["chat tiny-model"].get_attribute("gen_ai.usage.input_tokens") == 12
    [result] = spans["chat tiny-model"].events
    assert result.name == "gen_ai.evaluation.result"
    assert result.attributes["gen_ai.evaluation.score.value"] == 0.9


def test_feedback_on_a_trace_is_read_back_as_its_assessments(mlflow: Any, sent: list[str]) -> None:
    """What ``log_feedback`` kept comes back in the trace's info: the latest of a name valid,
    the one on a span named by it, a score an evaluator gave with its label."""
    trace_id = sent[0]
    generate = next(s for s in mlflow.get_trace(trace_id).data.spans if s.name == "generate")
    mlflow.log_feedback(trace_id=trace_id, name="helpful", value=False)
    mlflow.log_feedback(trace_id=trace_id, name="helpful", value=True, rationale="clear")
    mlflow.log_feedback(trace_id=trace_id, name="stars", value=4)
    mlflow.log_feedback(trace_id=trace_id, name="tags", value=["late", "polite"])
    mlflow.log_feedback(trace_id=trace_id, name="tone", value="friendly", span_id=generate.span_id)
    tracing.record_evaluation(trace_id[3:], generate.span_id, "grounded", 0.9, "yes")

    found = mlflow.get_trace(trace_id).info.assessments
    seen = [(a.name, a.value, a.valid, a.span_id, a.rationale) for a in found]
    assert sorted(seen, key=str) == sorted(
        [
            ("helpful", False, False, None, None),
            ("helpful", True, True, None, "clear"),
            ("stars", 4.0, True, None, None),
            ("tags", ["late", "polite"], True, None, None),
            ("tone", "friendly", True, generate.span_id, None),
            ("grounded", 0.9, True, generate.span_id, None),
        ],
        key=str,
    )
    grounded = next(a for a in found if a.name == "grounded")
    assert grounded.metadata == {"label": "yes"}
    assert grounded.source.source_type == "SOURCE_TYPE_UNSPECIFIED"  # Cauce keeps none


MLFLOW_RUN_APP = """
import mlflow

@mlflow.trace
def answer(question):
    return question.upper()

mlflow.set_experiment("support-bot")
with mlflow.start_run() as run:
    answer("inside")
answer("outside")
mlflow.flush_trace_async_logging()
print(run.info.run_id, run.info.experiment_id)
"""


def test_a_trace_made_in_an_mlflow_run_is_found_by_it(mlflow: Any) -> None:
    """MLflow names the run a trace was made in (``mlflow.sourceRun``): the trace is linked to
    it, found by ``search_traces(run_id=...)`` and placed in the run's experiment."""
    done = mlflow_app(MLFLOW_RUN_APP, MLFLOW_TRACKING_URI=os.environ["MLFLOW_TRACKING_URI"])
    run_id, experiment_id = done.stdout.splitlines()[-1].split()
    [inside] = mlflow.search_traces(run_id=run_id, locations=[experiment_id], return_type="list")
    assert inside.data.spans[0].inputs == {"question": "inside"}
    assert inside.info.trace_metadata["mlflow.sourceRun"] == run_id
    assert inside.info.experiment_id == experiment_id
    assert [t.id for t in tracing.list_traces(run_id=run_id)] == [inside.info.trace_id[3:]]
    found = mlflow.search_traces(locations=[experiment_id], return_type="list")
    [outside] = [t for t in found if t.info.trace_id != inside.info.trace_id]
    assert "mlflow.sourceRun" not in outside.info.trace_metadata
    assert outside.info.experiment_id == experiment_id  # the experiment it was sent to
    assert mlflow.search_traces(locations=["0"], return_type="list") == []


def test_mlflow_deletes_an_experiments_traces(mlflow: Any, sent: list[str]) -> None:
    """``delete_traces`` by id, and by age within the experiment they were sent to; a trace
    filed under another experiment is not touched."""
    client = mlflow.MlflowClient()
    other = client.create_experiment("elsewhere")
    with cauce.start_run(experiment="elsewhere"), tracing.span("answer") as elsewhere:
        pass
    tracing.flush()
    assert client.delete_traces("0", trace_ids=[sent[1]]) == 1
    last = mlflow.get_trace(sent[2]).info.request_time
    assert client.delete_traces("0", max_timestamp_millis=last - 1) == 1  # ana's first one
    assert [t.info.trace_id for t in mlflow.search_traces(return_type="list")] == [sent[2]]
    assert client.delete_traces("0", max_timestamp_millis=last + 10**9) == 1
    assert [t.id for t in tracing.list_traces()] == [elsewhere.trace_id]
    assert client.delete_traces(other, max_timestamp_millis=last + 10**9) == 1
    assert tracing.list_traces() == []


MLFLOW_EVALUATE = """
import mlflow
from mlflow.genai.scorers import scorer

@scorer
def exact(outputs, expectations):
    return outputs == expectations["expected_response"]

def predict(question):
    return question.upper()

data = [
    {"inputs": {"question": "hi"}, "expectations": {"expected_response": "HI"}},
    {"inputs": {"question": "bye"}, "expectations": {"expected_response": "bye"}},
]
mlflow.set_experiment("evals")
result = mlflow.genai.evaluate(data=data, predict_fn=predict, scorers=[exact])
print(result.run_id, result.metrics["exact/mean"])
"""


def test_mlflow_genai_evaluate_keeps_its_traces_scores_and_expectations(mlflow: Any) -> None:
    """``mlflow.genai.evaluate`` against the server: each row's trace linked to the evaluation
    run, with its expectation and its scorer's feedback, ready to become evaluation data."""
    done = mlflow_app(MLFLOW_EVALUATE, MLFLOW_TRACKING_URI=os.environ["MLFLOW_TRACKING_URI"])
    assert "Failed" not in done.stderr and "NOT_IMPLEMENTED" not in done.stderr, done.stderr
    run_id, mean = done.stdout.splitlines()[-1].split()
    assert float(mean) == 0.5
    experiment = mlflow.get_run(run_id).info.experiment_id
    found = mlflow.search_traces(locations=[experiment], run_id=run_id, return_type="list")
    assert len(found) == 2
    for trace in found:
        kinds = {a.name: a for a in trace.info.assessments}
        question = trace.data.spans[0].inputs["question"]
        assert kinds["expected_response"].value == ("HI" if question == "hi" else "bye")
        assert kinds["exact"].value is (question == "hi")
    rows = tracing.trace_rows()
    assert sorted(r["expectations.expected_response"] for r in rows) == ["HI", "bye"]
    assert {t.id for t in tracing.list_traces(run_id=run_id)} == {r["trace_id"] for r in rows}
