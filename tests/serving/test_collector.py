"""The collector: what one flush writes, whatever the requests it groups, and how each
protocol's module reads the bodies it records (one naming of predictions for both)."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from cauce.genai.tracing import FinishedSpan, FinishedTrace, get_trace
from cauce.serving import invocations, v2
from cauce.serving.collector import Collector, Record, files
from cauce.serving.endpoints import Deployment
from cauce.serving.invocations import encode_invocations
from cauce.serving.metrics import RouterMetrics
from cauce.serving.v2 import encode_v2
from cauce.workspace import Workspace
from clitools import wait_until


@pytest.fixture
def workspace(local_workspace: Workspace) -> Workspace:
    """The collector writes files beside the workspace: local only."""
    return local_workspace


def _deployment(fmt: str) -> Deployment:
    collect = {"requests": True, "responses": True, "sampling": 1.0, "format": fmt}
    return Deployment(
        endpoint="churn", name="blue", id="d1", target_kind="model", target="models:/churn/1",
        model_uri="models:/churn/1", model_name="churn",
        model_version=1, model_version_id="v1", signature=None, workers=1, batching=None,
        collect={**collect, "redact": ["email"]}, spec={}, created_at=0, updated_at=0,
    )  # fmt: skip


def _record(i: int, rows: list[dict[str, object]]) -> Record:
    return Record(
        deployment="blue",
        source="live",
        model_version="churn/1",
        correlation_id=f"r{i}",
        timestamp_ms=1_700_000_000_000 + i,
        latency_ms=1.0,
        request=json.dumps({"dataframe_records": rows}).encode(),
        content_type="application/json",
        response=json.dumps({"predictions": [0] * len(rows)}).encode(),
    )


def _trace(n: int, span_id: str | None = None) -> tuple[FinishedSpan, FinishedTrace]:
    """A relayed request's trace: its root span and its summary, as the router's sink gets
    them."""
    span = FinishedSpan(
        trace_id=f"{n:032x}", span_id=span_id or f"{n:016x}", parent_id=None, name="chat m",
        kind="client", operation="chat", started_ns=10**18, ended_ns=10**18 + 10**6,
        status="ok", status_message=None, input_tokens=3, output_tokens=4, cost=None,
        attributes={}, events=[],
    )  # fmt: skip
    trace = FinishedTrace(
        id=span.trace_id, name="chat m", root_span_id=span.span_id, started_at=10**12,
        ended_at=10**12 + 1, status="ok", span_count=1, input_tokens=3, output_tokens=4,
        cost=None,
    )  # fmt: skip
    return span, trace


def test_one_flush_keeps_every_column_of_requests_with_different_columns(
    workspace: Workspace,
) -> None:
    for fmt in ("parquet", "jsonl"):
        collector = Collector(workspace, f"churn-{fmt}")
        collector.configure([_deployment(fmt)])
        collector.record(_record(0, [{"age": 30, "charges": 50.0}]))
        collector.record(_record(1, [{"age": 31, "charges": 51.0, "email": "a@example.com"}]))
        collector.record(_record(2, [{"age": 32, "plan": "basic"}]))
        collector.flush()
        collector.close()
        paths = files(
            workspace.settings.state_dir / "collector", f"churn-{fmt}", "blue", "model_inputs"
        )
        assert len(paths) == 1  # the three requests went into one file
        read = pd.read_parquet if fmt == "parquet" else lambda p: pd.read_json(p, lines=True)
        frame = read(paths[0]).set_index("correlation_id")
        assert {"age", "charges", "email", "plan"} <= set(frame.columns), fmt
        assert frame.loc["r1", "email"] == "[redacted]"
        assert pd.isna(frame.loc["r0", "email"]) and pd.isna(frame.loc["r0", "plan"])
        assert frame.loc["r2", "plan"] == "basic" and pd.isna(frame.loc["r2", "charges"])


# -- reading what was asked and answered, by protocol -------------------------------------------

ROWS = [{"age": 30, "charges": 50.5}, {"age": 61, "charges": 20.0}]
COLUMNS = ["age", "charges"]


BINARY_ROWS = [
    ({"name": "age", "shape": [2], "datatype": "INT64"}, np.array([30, 61], "<i8").tobytes()),
    (
        {"name": "charges", "shape": [2], "datatype": "FP64"},
        np.array([50.5, 20.0], "<f8").tobytes(),
    ),
]


def _v2_binary(tensors: list[tuple[dict[str, object], bytes]]) -> tuple[bytes, int]:
    """A v2 request with binary tensor data, as tritonclient sends it by default."""
    inputs = [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in tensors]
    header = json.dumps({"inputs": inputs}).encode()
    return header + b"".join(raw for _, raw in tensors), len(header)


def test_every_request_format_gives_the_same_rows() -> None:
    json_type = "application/json"
    bodies = [
        ({"dataframe_split": {"columns": COLUMNS, "data": [[30, 50.5], [61, 20.0]]}}, None),
        ({"dataframe_records": ROWS}, None),
        ({"instances": ROWS}, None),
        ({"inputs": {"age": [30, 61], "charges": [50.5, 20.0]}}, None),
        ({"instances": [[30, 50.5], [61, 20.0]]}, COLUMNS),  # named by the signature
    ]
    for payload, columns in bodies:
        raw = json.dumps(payload).encode()
        assert invocations.request_rows(raw, json_type, columns) == ROWS, payload
    assert invocations.request_rows(b'{"inputs": {"age": 30}}', json_type) == [{"age": 30}]
    assert invocations.request_rows(b'{"instances": [[1, 2]]}', None) == [{"0": 1, "1": 2}]
    assert invocations.request_rows(b'{"instances": [7]}', None, ["age"]) == [{"age": 7}]
    csv = invocations.request_rows(b"age,charges\n30,50.5\n", "text/csv", None)
    assert csv == [{"age": "30", "charges": "50.5"}]  # as sent: text

    per_column = [
        {"name": "age", "shape": [2], "datatype": "INT64", "data": [30, 61]},
        {"name": "charges", "shape": [2, 1], "datatype": "FP64", "data": [[50.5], [20.0]]},
    ]
    raw = json.dumps({"inputs": per_column}).encode()
    assert v2.request_rows(raw, None) == ROWS
    binary, length = _v2_binary(BINARY_ROWS)
    assert v2.request_rows(binary, length) == ROWS
    matrix = {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [30, 50.5, 61, 20.0]}
    raw = json.dumps({"inputs": [matrix]}).encode()
    assert v2.request_rows(raw, None, COLUMNS) == ROWS  # the signature's order
    assert v2.request_rows(raw, None) == [{"0": 30, "1": 50.5}, {"0": 61, "1": 20.0}]


def test_answers_are_named_the_same_whichever_protocol_answered() -> None:
    """One naming for both protocols: ``prediction`` for one value per row, ``prediction_<i>``
    for k values per row (a v2 output of shape [n, k]), a table's own column names."""
    labels = np.array([1, 0])
    proba = np.array([[0.1, 0.9], [0.8, 0.2]])
    table = pd.DataFrame({"label": [1, 0], "score": [0.9, 0.2]})
    expected = {
        "labels": [{"prediction": 1}, {"prediction": 0}],
        "proba": [
            {"prediction_0": 0.1, "prediction_1": 0.9},
            {"prediction_0": 0.8, "prediction_1": 0.2},
        ],
        "table": [{"label": 1, "score": 0.9}, {"label": 0, "score": 0.2}],
    }
    for what, predictions in (("labels", labels), ("proba", proba), ("table", table)):
        assert invocations.answer_rows(encode_invocations(predictions)) == expected[what], what
        for binary in (False, True):
            answer = encode_v2(predictions, model_name="m", model_version="1", request_id="r",
                               binary=binary)  # fmt: skip
            assert v2.answer_rows(answer.body, answer.header_length) == expected[what], what
    several = encode_v2({"a": np.zeros((2, 3)), "b": np.array([5, 6])}, model_name="m",
                        model_version="1", request_id="r")  # fmt: skip
    assert v2.answer_rows(several.body, None) == [
        {"a_0": 0.0, "a_1": 0.0, "a_2": 0.0, "b": 5},
        {"a_0": 0.0, "a_1": 0.0, "a_2": 0.0, "b": 6},
    ]


def test_a_2d_v2_answer_is_collected_as_one_row_per_request_row(workspace: Workspace) -> None:
    """Two rows asked over v2 with binary data, a [2, 2] output answered: two input rows and
    two output rows, each with the two values."""
    collector = Collector(workspace, "churn")
    collector.configure([_deployment("parquet")])
    request, request_length = _v2_binary(BINARY_ROWS)
    answer = encode_v2(np.array([[0.1, 0.9], [0.8, 0.2]]), model_name="churn", model_version="1",
                       request_id="v2-1", binary=True)  # fmt: skip
    collector.record(
        Record(
            deployment="blue",
            source="live",
            model_version="churn/1",
            correlation_id="v2-1",
            timestamp_ms=1_700_000_000_000,
            latency_ms=1.0,
            request=request,
            content_type="application/octet-stream",
            response=answer.body,
            protocol="v2",
            request_header_length=str(request_length),
            response_header_length=str(answer.header_length),
        )
    )
    collector.flush()
    collector.close()
    assert collector.errors == 0
    root = workspace.settings.state_dir / "collector"
    inputs = pd.read_parquet(files(root, "churn", "blue", "model_inputs")[0])
    outputs = pd.read_parquet(files(root, "churn", "blue", "model_outputs")[0])
    assert inputs[["row", "age", "charges"]].values.tolist() == [[0, 30, 50.5], [1, 61, 20.0]]
    assert outputs[["row", "prediction_0", "prediction_1"]].values.tolist() == [
        [0, 0.1, 0.9],
        [1, 0.8, 0.2],
    ]


def test_a_writer_killed_with_records_unwritten_counts_them_lost_and_the_next_one_writes(
    workspace: Workspace,
) -> None:
    """The writer process killed (SIGKILL) while two records and a trace wait in its pipe:
    those are counted as lost, never silently; the next record starts a new writer, which
    writes it."""
    collector = Collector(workspace, "churn")
    collector.configure([_deployment("parquet")])
    collector.record(_record(0, [{"age": 30}]))
    collector.span(*_trace(1))
    collector.flush()
    first = collector.writer_pid
    assert first is not None and (collector.written, collector.errors) == (1, 0)
    assert (collector.traces_stored, collector.traces_lost) == (1, 0)
    assert get_trace(f"{1:032x}", workspace=workspace).summary.output_tokens == 4
    os.kill(first, signal.SIGSTOP)  # it cannot read what comes next
    collector.record(_record(1, [{"age": 31}]))
    collector.record(_record(2, [{"age": 32}]))
    collector.span(*_trace(2))
    collector.flush(timeout=0.5)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: collector.errors == 2, timeout=10)
    collector.record(_record(3, [{"age": 33}]))
    collector.flush()
    assert collector.writer_pid not in (None, first)
    collector.close()
    assert (collector.written, collector.errors) == (2, 2)
    assert (collector.traces_stored, collector.traces_lost) == (1, 1)
    metrics = RouterMetrics("churn")
    metrics.count_collected(collector)
    exposed = metrics.exposition().decode()
    assert 'cauce_collected_records_total{endpoint="churn",outcome="lost"} 2.0' in exposed
    assert 'cauce_collected_records_total{endpoint="churn",outcome="written"} 2.0' in exposed
    assert 'cauce_collected_traces_total{endpoint="churn",outcome="stored"} 1.0' in exposed
    assert 'cauce_collected_traces_total{endpoint="churn",outcome="lost"} 1.0' in exposed
    root = workspace.settings.state_dir / "collector"
    written = pd.concat(pd.read_parquet(p) for p in files(root, "churn", "blue", "model_inputs"))
    assert sorted(written["correlation_id"]) == ["r0", "r3"]


def test_a_record_that_cannot_be_read_and_traces_the_store_refuses_are_counted_lost(
    workspace: Workspace,
) -> None:
    """A record whose body is not JSON is lost, not written beside it; a batch of traces the
    store refuses is lost as a whole, and the next batch is stored."""
    collector = Collector(workspace, "churn")
    collector.configure([_deployment("parquet")])
    unreadable = Record(**{**_record(1, []).__dict__, "request": b"{not json"})
    collector.record(_record(0, [{"age": 30}]))
    collector.record(unreadable)
    collector.span(*_trace(1, span_id="not-hex"))
    collector.flush()
    collector.span(*_trace(2))
    collector.close()
    assert (collector.written, collector.errors) == (1, 1)
    assert (collector.traces_stored, collector.traces_lost) == (1, 1)
