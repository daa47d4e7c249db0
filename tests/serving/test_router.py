"""The router in this process, in front of a real deployment worker, and a mirror that cannot be
reached: its failures never reach the caller, and they are counted and logged.

Both servers are uvicorn on loopback in threads of the test process; the mirrored deployment's
address is a port that nothing listens on, so every copy fails the same way on any machine.
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
from cauce.specs import apply_file
from cauce.workspace import Workspace
from clitools import wait_until

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
    apply_file(tmp_path / "churn.yaml")
    blue = serve(build_app("churn", "blue", workspace=workspace))
    blue_url = next(blue)
    addresses = {"blue": blue_url, "ghost": f"http://127.0.0.1:{closed_port()}"}
    front = serve(Router(workspace, "churn", lambda: addresses, collect=False))
    try:
        yield next(front)
    finally:
        for server in (front, blue):
            server.close()


def mirror_errors(client: httpx.Client, deployment: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name == "cauce_mirror_errors_total"
        and sample.labels["deployment"] == deployment
        and sample.labels["reason"] == "unreachable"
    )


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
