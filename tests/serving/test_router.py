"""The router in this process, in front of real deployment workers, with deployments that
cannot be reached: a mirror's failures never reach the caller and are counted and logged; a
live deployment that died is failed over from, counted.

Every server is uvicorn on loopback in a thread of the test process. An unreachable deployment
listens on nothing (a port bound, then closed), so every attempt fails the same way on any
machine, however loaded: the router's health checks, which would otherwise steer traffic away
within a second, run only when the router starts.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cauce.serving.router import Router
from cauce.serving.workers import bind, build_app
from cauce.specs import apply
from cauce.workspace import Workspace
from clitools import wait_until


@pytest.fixture
def workspace(local_workspace: Workspace) -> Workspace:
    """A running router stores its measurements beside the store: local only."""
    return local_workspace


SPEC = """\
kind: Endpoint
name: churn
traffic: {blue: 100}
mirror: {ghost: 100}
---
kind: Deployment
endpoint: churn
name: blue
model: models:/churn/1
---
kind: Deployment
endpoint: churn
name: ghost
model: models:/churn/1
"""


def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread; yield its URL."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def closed_port() -> int:
    """A loopback port that refuses connections: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def router(workspace: Workspace, churn_model: Any, tmp_path: Path) -> Iterator[str]:
    churn_model()
    (tmp_path / "churn.yaml").write_text(SPEC)
    apply(tmp_path / "churn.yaml")
    blue = serve(build_app("churn", "blue", workspace=workspace))
    blue_url = next(blue)
    addresses = {"blue": blue_url, "ghost": f"http://127.0.0.1:{closed_port()}"}
    front = serve(Router(workspace, "churn", lambda: addresses, collect=False))
    try:
        yield next(front)
    finally:
        for server in (front, blue):
            server.close()


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The sum of the router's /metrics samples called ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def mirror_errors(client: httpx.Client, deployment: str) -> float:
    return metric(client, "cauce_mirror_errors_total", deployment=deployment, reason="unreachable")


def test_an_unreachable_mirror_is_counted_and_logged_never_answered(
    router: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="cauce.router"),
        httpx.Client(base_url=router) as client,
    ):
        for i in range(5):
            reply = client.post(
                "/invocations", json={"dataframe_records": [{"age": 30 + i, "charges": 50.0}]}
            )
            assert (reply.status_code, reply.headers["cauce-deployment"]) == (200, "blue")
        wait_until(lambda: mirror_errors(client, "ghost") == 5, timeout=10)
        assert mirror_errors(client, "blue") == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "cauce.router"]
    # One line for the first failure; the others within MIRROR_LOG_EVERY_S are only counted.
    assert len(warnings) == 1, warnings
    assert "mirror copy to ghost failed (unreachable)" in warnings[0]
    assert "cannot connect" in warnings[0]


LIVE = """\
kind: Endpoint
name: churn
traffic: {blue: 10, green: 90}
---
kind: Deployment
endpoint: churn
name: blue
model: models:/churn/1
---
kind: Deployment
endpoint: churn
name: green
model: models:/churn/1
"""


def test_requests_fail_over_from_a_live_deployment_that_died(
    workspace: Workspace, churn_model: Any, tmp_path: Path
) -> None:
    """green takes 90% of live traffic, answers its health check, then dies (its port refuses
    connections). The router still believes it healthy, so every request drawn to green meets
    it dead: tried twice, then answered by blue. No caller sees an error."""
    churn_model()
    (tmp_path / "churn.yaml").write_text(LIVE)
    apply(tmp_path / "churn.yaml")
    blue = serve(build_app("churn", "blue", workspace=workspace))
    green = serve(build_app("churn", "green", workspace=workspace))
    addresses = {"blue": next(blue), "green": next(green)}
    router = Router(workspace, "churn", lambda: addresses, collect=False, health_every=3600)
    front = serve(router)
    try:
        with httpx.Client(base_url=next(front)) as client:
            wait_until(
                lambda: (
                    client.get("/v2/health/ready").json()["deployments"]
                    == {"blue": True, "green": True}
                ),
                timeout=30,
            )
            green.close()  # green is gone: its port refuses connections from now on
            n = 30  # each drawn to green with p = 0.9: none of 30 is a 1-in-10^30 chance
            for i in range(n):
                reply = client.post(
                    "/invocations",
                    json={"dataframe_records": [{"age": 30 + i, "charges": 50.0}]},
                )
                assert (reply.status_code, reply.headers["cauce-deployment"]) == (200, "blue")
            assert client.get("/v2/health/ready").json()["deployments"]["green"] is True
            failovers = metric(client, "cauce_failovers_total", deployment="green", to="blue")
            failed = metric(client, "cauce_request_errors_total", deployment="green")
            answered = metric(client, "cauce_requests_total", deployment="blue", source="live")
    finally:
        for server in (front, blue, green):
            server.close()
    assert failovers >= 1
    assert failed == 2 * failovers  # each one: green tried, tried again, then blue
    assert answered == n
