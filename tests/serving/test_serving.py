"""Serving for real: ``cauce endpoints serve`` in a subprocess, called over HTTP on loopback.

One endpoint is served for the whole module (starting processes is what costs time):

- ``blue``: two workers, collects requests and responses (Parquet), redacts ``email``;
- ``green``: one worker, collects as JSON lines;
- ``batched``: adaptive batching (16 rows / 20 ms), collection sampled at 0;
- ``broken``: a model that raises on every call.

Tests move traffic and mirror as they need and wait for the running router to pick the change
up, as a user would. The last test stops the server with SIGINT (Ctrl-C) and checks what the
collector registered; the module's finalizer kills the whole process group whatever happened.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from cauce.data.assets import versions
from cauce.serving.endpoints import get_endpoint, set_traffic
from cauce.workspace import Workspace
from clitools import cauce, wait_until
from served import Served, alive, children, serving

pytestmark = pytest.mark.slow

SPEC = """\
kind: Endpoint
name: churn
traffic: {blue: 100}
max_request_bytes: 65536
---
kind: Deployment
endpoint: churn
name: blue
model: models:/churn/1
workers: 2
collect: {requests: true, responses: true, redact: [email]}
---
kind: Deployment
endpoint: churn
name: green
model: models:/churn/1
collect: {format: jsonl}
---
kind: Deployment
endpoint: churn
name: batched
model: models:/churn/1
batching: {max_batch_size: 16, max_latency_ms: 20}
collect: {sampling: 0.0}
---
kind: Deployment
endpoint: churn
name: broken
model: models:/broken/1
"""
DEPLOYMENTS = ["blue", "green", "batched", "broken"]


# -- helpers ----------------------------------------------------------------------------------


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def settled(read: Any, every: float = 0.3, timeout: float = 30) -> Any:
    """``read()`` once two reads ``every`` seconds apart agree (copies in flight have landed)."""
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        time.sleep(every)
        value, previous = read(), value
        if value == previous:
            return value
    raise AssertionError(f"{read} did not settle in {timeout} s")


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    pairs = zip(frame.age, frame.charges, strict=True)
    return [{"age": int(a), "charges": float(c)} for a, c in pairs]


def collected(ws: Workspace, deployment: str, collection: str) -> pd.DataFrame:
    """Every row the collector wrote for one deployment of ``churn`` and one collection."""
    from cauce.serving.collector import files

    paths = files(ws.settings.state_dir / "collector", "churn", deployment, collection)
    frames = [
        pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_json(p, lines=True) for p in paths
    ]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame if len(frame) else pd.DataFrame({"correlation_id": []})


def ids_collected(ws: Workspace, deployment: str, collection: str, prefix: str) -> set[str]:
    ids = collected(ws, deployment, collection)["correlation_id"].astype(str)
    return {i for i in ids if i.startswith(prefix)}


# -- the served endpoint ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(module_workspace: Workspace, churn_model: Any, broken_model: Any) -> Any:
    """The churn model as registered (version 1), for local predictions to compare with."""
    fitted = churn_model()
    broken_model()
    return fitted


@pytest.fixture(scope="module")
def served(module_workspace: Workspace, model: Any) -> Iterator[Served]:
    with serving(
        module_workspace, SPEC, DEPLOYMENTS, warm_row={"age": 30, "charges": 50.0}
    ) as server:
        yield server


def route(served: Served, traffic: dict[str, int], mirror: dict[str, int] | None = None) -> None:
    """Move traffic (and mirror) in the store, then wait until the router answers accordingly."""
    current = get_endpoint("churn")
    if (current.traffic, current.mirror) == (traffic, mirror or {}):
        return  # already so, and the router has long read it
    set_traffic("churn", traffic, mirror=mirror or {}, reason="test")
    live = {n for n, w in traffic.items() if w > 0}
    # The router reloads within a second; until then answers may come from elsewhere.
    time.sleep(1.2)
    wait_until(
        lambda: all(
            served.score([{"age": 30, "charges": 50.0}]).headers["cauce-deployment"] in live
            for _ in range(20)
        ),
        timeout=5,
    )


# -- scoring ----------------------------------------------------------------------------------


def test_mlflow_formats_and_v2_are_scored_by_the_model(served: Served, model: Any) -> None:
    frame = pd.DataFrame({"age": [25, 61, 40], "charges": [80.5, 20.0, 55.0]})
    expected = model.predict(frame).tolist()
    records = rows_of(frame)
    bodies = {
        "split": {
            "dataframe_split": {"columns": ["age", "charges"], "data": frame.values.tolist()}
        },
        "records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {"age": [25, 61, 40], "charges": [80.5, 20.0, 55.0]}},
    }
    for what, body in bodies.items():
        reply = served.client.post("/invocations", json=body, headers={"x-request-id": what})
        assert reply.status_code == 200, (what, reply.text)
        assert reply.json() == {"predictions": expected}, what
        assert reply.headers["cauce-deployment"] == "blue"
        assert reply.headers["cauce-model-version"] == "churn/1"
        assert reply.headers["x-request-id"] == what
    csv = served.client.post(
        "/invocations", content=frame.to_csv(index=False), headers={"content-type": "text/csv"}
    )
    assert csv.status_code == 200, csv.text
    assert csv.json() == {"predictions": expected}

    v2 = {
        "id": "req-1",
        "inputs": [
            {"name": "age", "shape": [3], "datatype": "INT64", "data": [25, 61, 40]},
            {"name": "charges", "shape": [3], "datatype": "FP64", "data": [80.5, 20.0, 55.0]},
        ],
    }
    reply = served.client.post("/v2/models/churn/infer", json=v2)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("churn", "1", "req-1")
    assert answer["outputs"][0]["data"] == expected
    assert answer["outputs"][0]["shape"] == [3]
    asked = served.client.post("/v2/models/churn/infer", json={**v2, "outputs": [{"name": "x"}]})
    assert v2_error_of(asked, 400)["details"]["field"] == "outputs"

    metadata = served.client.get("/v2/models/churn")
    assert metadata.status_code == 200
    assert {i["name"] for i in metadata.json()["inputs"]} == {"age", "charges"}
    assert served.client.get("/v2/models/churn/ready").json()["ready"] is True
    assert served.client.get("/ping").status_code == 200


def test_the_deployment_header_targets_one_deployment_and_is_not_mirrored(
    served: Served, module_workspace: Workspace
) -> None:
    route(served, {"blue": 100}, mirror={"green": 100})
    mirrored = settled(
        lambda: served.metric("cauce_requests_total", deployment="green", source="mirror")
    )
    for deployment in ("blue", "green", "batched"):
        for i in range(10):
            reply = served.score(
                [{"age": 40, "charges": 60.0}],
                cauce_deployment=deployment,
                x_request_id=f"pin-{deployment}-{i}",
            )
            assert reply.status_code == 200, reply.text
            assert reply.headers["cauce-deployment"] == deployment
    time.sleep(0.5)  # a mirror copy, had one been sent, would have arrived by now
    assert served.metric("cauce_requests_total", deployment="green", source="mirror") == mirrored
    pinned = {f"pin-green-{i}" for i in range(10)}  # and no pin-blue-* or pin-batched-*
    wait_until(lambda: ids_collected(module_workspace, "green", "model_inputs", "pin-") == pinned)


def test_a_mirror_copies_requests_without_touching_the_answers(
    served: Served, module_workspace: Workspace
) -> None:
    route(served, {"blue": 100}, mirror={"green": 100})
    before = settled(
        lambda: served.metric("cauce_requests_total", deployment="green", source="mirror")
    )
    for i in range(40):
        reply = served.score([{"age": 20 + i, "charges": 50.0}], x_request_id=f"mirror-{i}")
        assert reply.status_code == 200
        assert reply.headers["cauce-deployment"] == "blue"
    wait_until(
        lambda: (
            served.metric("cauce_requests_total", deployment="green", source="mirror")
            == before + 40
        )
    )
    # Both sides of every mirrored request are collected, under the same correlation id.
    expected = {f"mirror-{i}" for i in range(40)}
    wait_until(
        lambda: ids_collected(module_workspace, "green", "model_outputs", "mirror-") == expected
    )
    wait_until(
        lambda: ids_collected(module_workspace, "blue", "model_outputs", "mirror-") == expected
    )
    green = collected(module_workspace, "green", "model_outputs")
    assert set(green[green.correlation_id.str.startswith("mirror-")].source) == {"mirror"}


def test_traffic_changed_with_the_cli_takes_effect_and_is_honoured(served: Served) -> None:
    route(served, {"blue": 100})
    result = cauce(served.ws.settings.root, "endpoints", "traffic", "churn", "blue=50", "green=50")
    assert "blue=50%, green=50%" in result.stdout
    changed = time.monotonic()
    wait_until(
        lambda: served.score([{"age": 30, "charges": 50.0}]).headers["cauce-deployment"] == "green",
        timeout=5,
    )
    assert time.monotonic() - changed < 2.5

    n = 400
    answered = [
        served.score([{"age": 30, "charges": 50.0}]).headers["cauce-deployment"] for _ in range(n)
    ]
    green = answered.count("green")
    assert set(answered) == {"blue", "green"}
    # Binomial(400, 0.5): the standard deviation is 10; five of them is a one-in-a-million miss.
    assert abs(green - n / 2) <= 5 * math.sqrt(n * 0.25), green

    history = cauce(served.ws.settings.root, "endpoints", "traffic", "churn", "--json")
    changes = json.loads(history.stdout)
    assert changes[-1]["traffic"] == {"blue": 50, "green": 50}
    assert changes[-1]["actor"] == "cli-tester"


def test_a_failing_mirror_never_reaches_the_caller(served: Served) -> None:
    # A mirror whose model raises on every call.
    route(served, {"blue": 100}, mirror={"broken": 100})
    errors = settled(
        lambda: served.metric("cauce_request_errors_total", deployment="broken", source="mirror")
    )
    for i in range(30):
        reply = served.score([{"age": 30, "charges": 40.0 + i}])
        assert (reply.status_code, reply.headers["cauce-deployment"]) == (200, "blue")
    wait_until(
        lambda: (
            served.metric("cauce_request_errors_total", deployment="broken", source="mirror")
            == errors + 30
        )
    )
    assert served.metric("cauce_requests_total", deployment="broken", source="mirror") == (
        served.metric("cauce_request_errors_total", deployment="broken", source="mirror")
    )
    # Called directly, the same model's failure is a JSON 500, counted as a live error.
    live_errors = served.metric("cauce_request_errors_total", deployment="broken", source="live")
    reply = served.score([{"age": 30, "charges": 40.0}], cauce_deployment="broken")
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "model-error"
    assert "this model always fails" in reply.json()["error"]["message"]
    errors_now = served.metric("cauce_request_errors_total", deployment="broken", source="live")
    assert errors_now == live_errors + 1

    # A mirror whose deployment server is killed: its workers stop by themselves (they would
    # otherwise hold the model and the socket forever), the supervisor starts green anew.
    route(served, {"blue": 100}, mirror={"green": 100})
    green = served.deployment_servers()["green"]
    workers = children(green)
    os.kill(green, signal.SIGKILL)
    for i in range(30):
        reply = served.score([{"age": 30, "charges": 40.0 + i}])
        assert (reply.status_code, reply.headers["cauce-deployment"]) == (200, "blue")
    wait_until(lambda: not any(alive(pid) for pid in workers), timeout=15)
    wait_until(lambda: served.deployment_servers().get("green") not in (None, green), timeout=10)
    served.wait_ready(["green"])
    assert served.score([{"age": 30, "charges": 1.0}], cauce_deployment="green").status_code == 200
    log = (module_workspace_root(served) / "green.log").read_text()
    assert "deployment server exited with -9" in log


def test_callers_see_no_error_while_a_live_deployment_dies_and_comes_back(served: Served) -> None:
    """green, with half the live traffic, is killed whole (server and workers) while requests
    come: every caller is answered, and green's supervisor starts it again.

    How many requests meet green dead depends on how fast it comes back (on a loaded machine,
    before the first request): that those fail over is proven whatever the timing by
    test_router.py::test_requests_fail_over_from_a_live_deployment_that_died. What holds here
    for any timing: every failover counted cost two failed attempts on green first.
    """
    route(served, {"blue": 50, "green": 50})
    green = served.deployment_servers()["green"]
    workers = children(green)
    failed_before = served.metric("cauce_request_errors_total", deployment="green", source="live")
    failovers_before = served.metric("cauce_failovers_total", deployment="green")
    for pid in [green, *workers]:  # the whole deployment, at once
        os.kill(pid, signal.SIGKILL)
    answered = [served.score([{"age": 30, "charges": 40.0 + i}]) for i in range(60)]
    assert [(r.status_code, r.text) for r in answered] == [(200, r.text) for r in answered]
    assert {r.headers["cauce-deployment"] for r in answered} <= {"blue", "green"}
    assert all(r.json()["predictions"] in ([0], [1]) for r in answered)
    failed = served.metric("cauce_request_errors_total", deployment="green", source="live")
    failovers = served.metric("cauce_failovers_total", deployment="green")
    assert 2 * (failovers - failovers_before) <= failed - failed_before
    wait_until(lambda: served.deployment_servers().get("green") not in (None, green), timeout=60)
    served.wait_ready(["green"])
    route(served, {"blue": 100})


def module_workspace_root(served: Served) -> Path:
    return served.ws.settings.state_dir / "logs" / "endpoints" / "churn"


# -- errors -----------------------------------------------------------------------------------


def error_of(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = reply.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def v2_error_of(reply: httpx.Response, status: int) -> dict[str, Any]:
    """An Open Inference Protocol error: ``{"error": "<message>"}``, Cauce's code beside it."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = reply.json()
    assert isinstance(body["error"], str) and body["error"]
    assert set(body) == {"error", "code", "details"}
    return body


def test_bad_requests_get_a_4xx_naming_the_problem(served: Served) -> None:
    post = served.client.post
    error = error_of(
        post("/invocations", content=b"{not json", headers={"content-type": "application/json"}),
        400,
    )
    assert "JSON" in error["message"] or "json" in error["message"]

    error = error_of(
        post("/invocations", content=b"age\n1", headers={"content-type": "text/plain"}), 415
    )
    assert "text/plain" in error["message"]

    error = error_of(post("/nowhere", json={}), 404)
    assert "/nowhere" in error["message"]
    v2_error_of(served.client.get("/v2/models/churn/nowhere"), 404)

    error = error_of(served.score([{"age": 1, "charges": 1.0}], cauce_deployment="purple"), 404)
    assert "purple" in error["message"]

    big = [{"age": 30, "charges": 50.0, "note": "x" * 1000}] * 70
    error = error_of(post("/invocations", json={"dataframe_records": big}), 413)
    assert error["details"]["limit"] == 65536

    error = error_of(served.score([{"age": 30}]), 422)
    assert "charges" in error["message"]
    error = error_of(served.score([{"age": "old", "charges": 50.0}]), 422)
    assert error["details"]["field"].startswith("age") or "age" in error["message"]
    nan = b'{"dataframe_records": [{"age": 30, "charges": NaN}]}'
    error = error_of(
        post("/invocations", content=nan, headers={"content-type": "application/json"}), 422
    )
    assert "charges" in error["message"]
    error = v2_error_of(post("/v2/models/churn/infer", json={"inputs": []}), 400)
    assert error["details"]["field"] == "inputs" and "inputs" in error["error"]
    error = v2_error_of(
        served.client.get("/v2/models/churn", headers={"cauce-deployment": "x"}), 404
    )
    assert "'x'" in error["error"]


def test_metrics_count_requests_errors_latency_and_batches(served: Served) -> None:
    served.score([{"age": 30, "charges": 50.0}], cauce_deployment="blue")
    for name in (
        "cauce_requests_total",
        "cauce_request_latency_seconds_count",
        "cauce_request_latency_seconds_bucket",
    ):
        assert served.metric(name, endpoint="churn", deployment="blue", source="live") > 0, name
    # (errors are counted in test_a_failing_mirror_never_reaches_the_caller: xdist may run that
    # test on the other worker, with a router of its own)
    assert served.metric("cauce_request_errors_total", deployment="blue") == 0
    assert served.metric("cauce_batch_size_count", endpoint="churn", deployment="blue") > 0
    inf = served.metric(
        "cauce_request_latency_seconds_bucket", deployment="blue", source="live", le="+Inf"
    )
    assert inf == served.metric("cauce_requests_total", deployment="blue", source="live")


def test_batching_scores_concurrent_requests_together_and_answers_each_its_own(
    served: Served, model: Any
) -> None:
    rng = np.random.default_rng(7)
    frames = [
        pd.DataFrame({"age": rng.integers(18, 80, n), "charges": rng.normal(55, 15, n).round(2)})
        for n in rng.integers(1, 4, 160)
    ]

    def call(frame: pd.DataFrame) -> tuple[list[Any], int]:
        reply = served.score(rows_of(frame), cauce_deployment="batched")
        assert reply.status_code == 200, reply.text
        return reply.json()["predictions"], int(reply.headers["cauce-batch-size"])

    before = served.metric("cauce_batch_size_count", deployment="batched")
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, frames))
    for frame, (predictions, _) in zip(frames, answers, strict=True):
        assert predictions == model.predict(frame).tolist()
    assert max(size for _, size in answers) > 1
    count = served.metric("cauce_batch_size_count", deployment="batched") - before
    assert count == len(frames)
    assert served.metric("cauce_batch_size_sum", deployment="batched") > count


# -- the collector ----------------------------------------------------------------------------


def test_the_collector_records_each_answered_request_once(
    served: Served, module_workspace: Workspace
) -> None:
    n = 30
    for i in range(n):
        reply = served.score(
            [
                {"age": 30 + i, "charges": 50.0, "email": f"c{i}@example.com"},
                {"age": 31 + i, "charges": 51.0, "email": f"d{i}@example.com"},
            ],
            cauce_deployment="blue",
            x_request_id=f"col-{i}",
        )
        assert reply.status_code == 200
    expected = {f"col-{i}" for i in range(n)}
    for collection in ("model_inputs", "model_outputs"):
        wait_until(
            lambda c=collection: ids_collected(module_workspace, "blue", c, "col-") == expected
        )
        frame = collected(module_workspace, "blue", collection)
        mine = frame[frame.correlation_id.str.startswith("col-")]
        assert len(mine) == 2 * n  # two rows per request, each once
        assert sorted(mine.row.unique()) == [0, 1]
        assert set(mine.deployment) == {"blue"} and set(mine.source) == {"live"}
        assert set(mine.model_version) == {"churn/1"}
    inputs = collected(module_workspace, "blue", "model_inputs")
    mine = inputs[inputs.correlation_id.str.startswith("col-")]
    assert set(mine.email) == {"[redacted]"}
    assert sorted(mine.age) == sorted([30 + i for i in range(n)] + [31 + i for i in range(n)])
    outputs = collected(module_workspace, "blue", "model_outputs")
    assert "prediction" in outputs.columns

    # What was written and what was lost, for Prometheus.
    from prometheus_client.parser import text_string_to_metric_families

    scraped = {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(httpx.get(f"{served.url}/metrics").text)
        for s in family.samples
        if s.name == "cauce_collected_records_total" and s.labels["endpoint"] == "churn"
    }
    assert scraped["written"] >= n and scraped["lost"] == 0  # a record per answered request

    # green collects JSON lines; batched samples nothing (sampling: 0).
    root = module_workspace.settings.state_dir / "collector" / "endpoint=churn"
    assert list((root / "deployment=green").rglob("*.jsonl"))
    assert not (root / "deployment=batched").exists()


def test_a_killed_worker_costs_no_request(served: Served, module_workspace: Workspace) -> None:
    route(served, {"blue": 100})
    blue = served.deployment_servers()["blue"]
    workers = children(blue)
    assert len(workers) == 2
    total, clients = 1500, 8
    answered: list[str] = []
    failures: list[str] = []

    def client(k: int) -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            for i in range(k, total, clients):
                try:
                    reply = http.post(
                        "/invocations",
                        json={"dataframe_records": [{"age": 20 + i % 60, "charges": 50.0}]},
                        headers={"x-request-id": f"load-{i}"},
                    )
                except httpx.HTTPError as exc:
                    failures.append(f"load-{i}: {exc!r}")
                    continue
                if reply.status_code == 200:
                    answered.append(f"load-{i}")
                else:
                    failures.append(f"load-{i}: {reply.status_code} {reply.text}")

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(client, k) for k in range(clients)]
        wait_until(lambda: len(answered) >= 300, timeout=30, every=0.01)
        os.kill(workers[0], signal.SIGKILL)
        for future in running:
            future.result()
    assert failures == []
    assert len(answered) == total
    wait_until(
        lambda: ids_collected(module_workspace, "blue", "model_inputs", "load-") == set(answered)
    )
    logs = cauce(module_workspace.settings.root, "deployments", "logs", "churn", "blue")
    assert f"worker {workers[0]} exited with -9; starting another" in logs.stdout
    wait_until(lambda: len(children(blue)) == 2 and workers[0] not in children(blue))


def test_schemathesis_finds_no_server_error(served: Served, tmp_path: Path) -> None:
    route(served, {"blue": 100})
    config = tmp_path / "schemathesis.toml"
    config.write_text('[parameters]\n"path.name" = "churn"\n')
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "--config-file",
            str(config),
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--workers",
            "1",  # with more, Hypothesis's lambda-source cache races between threads
            "--no-shrink",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:]


# -- stopping ---------------------------------------------------------------------------------


def test_stopping_registers_the_collected_datasets(
    served: Served, module_workspace: Workspace
) -> None:
    served.score([{"age": 30, "charges": 50.0}], cauce_deployment="blue")
    assert served.stop() == 130  # the usual status after Ctrl-C
    assert "Traceback" not in served.log()
    wait_until(lambda: not group_alive(served.process.pid), timeout=20)  # no worker left behind
    assert served.deployment_servers() == {}
    inputs = versions("churn.blue.model_inputs")
    outputs = versions("churn.blue.model_outputs")
    assert inputs and outputs
    assert versions("churn.green.model_inputs")
    assert not list((module_workspace.settings.state_dir / "collector").rglob(".*.tmp"))
