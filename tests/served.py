"""A served endpoint for tests: ``cauce endpoints serve`` in its own process group, a client for
it, and the /proc look-ups that find its processes.

Importable from every test module (pytest puts this folder on sys.path, as for clitools).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from cauce.workspace import Workspace

CLI = (sys.executable, "-m", "cauce.cli.main")


# Endpoint churn: model churn v1 served as deployment blue, taking all traffic, collecting.
CHURN_BLUE = """\
kind: Endpoint
name: churn
traffic: {blue: 100}
---
kind: Deployment
endpoint: churn
name: blue
model: models:/churn/1
collect: {}
"""


# The same, with deployment green serving v2 (no traffic yet), collecting too.
CHURN_BLUE_GREEN = (
    CHURN_BLUE
    + """\
---
kind: Deployment
endpoint: churn
name: green
model: models:/churn/2
collect: {}
"""
)


@contextlib.contextmanager
def app_server(ws: Workspace) -> Iterator[str]:
    """``cauce server``'s whole app over ``ws`` (Cauce's API, MLflow's, OTLP's, the
    authentication gate), served by uvicorn in a thread on a free loopback port; its URL."""
    import uvicorn

    from cauce.server.app import create_app

    app = create_app(ws)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    """The pids of a process's children (from /proc, without psutil)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Served:
    """A running ``cauce endpoints serve`` process and a client for it."""

    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = ws.settings.state_dir / f"serve-{endpoint}-{self.port}.out"
        self.output.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
        env.update({"CAUCE_HOME": str(ws.settings.root), "CAUCE_USER": "server"})
        if ws.settings.server_url is not None:  # served against that Cauce server
            env["CAUCE_SERVER_URL"] = ws.settings.server_url
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [*CLI, "endpoints", "serve", endpoint, "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole at the end
            )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ready(self, deployments: list[str], timeout: float = 120) -> None:
        """Until the router reports every one of ``deployments`` healthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                last = self.client.get("/v2/health/ready").json()
                if all(last["deployments"].get(d) for d in deployments):
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"not ready after {timeout} s: {last}\n{self.log()}")

    def log(self) -> str:
        """What the serve command printed."""
        return self.output.read_text(errors="replace")

    def score(self, rows: list[dict[str, Any]], **headers: str) -> httpx.Response:
        """POST ``rows`` to /invocations as dataframe_records."""
        return self.client.post(
            "/invocations",
            json={"dataframe_records": rows},
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the /metrics samples called ``name`` whose labels include ``labels``."""
        from prometheus_client.parser import text_string_to_metric_families

        reply = self.client.get("/metrics")
        assert reply.status_code == 200
        return sum(
            sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def deployment_servers(self) -> dict[str, int]:
        """Deployment name -> the pid of its deployment server (a child of the router)."""
        found = {}
        for pid in children(self.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"cauce.serving.workers" in argv and b"serve" in argv:
                found[argv[argv.index(b"serve") + 2].decode()] = pid
        return found

    def stop(self, timeout: float = 60) -> int:
        """SIGINT the router (as Ctrl-C would) and wait for it to exit; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Kill the whole process group, whatever state it is in."""
        self.client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def serving(
    ws: Workspace,
    spec: str,
    deployments: list[str],
    *,
    warm_row: dict[str, Any] | None = None,
    endpoint: str = "churn",
) -> Iterator[Served]:
    """Apply ``spec`` (YAML text), serve ``endpoint`` until the block ends (the whole process
    group killed, whatever happened) once ``deployments`` are ready.

    With ``warm_row``, each deployment is called once with it first: a worker's first call is
    slow, and not what tests time.
    """
    from cauce.specs import apply

    apply(spec, workspace=ws)
    server = Served(ws, endpoint)
    try:
        server.wait_ready(deployments)
        if warm_row is not None:
            for deployment in deployments:
                server.score([warm_row], cauce_deployment=deployment)
        yield server
    finally:
        server.kill()


def record_requests(
    ws: Workspace,
    rows: list[dict[str, Any]],
    answers: list[Any],
    *,
    at: int,
    deployment: str = "blue",
    source: str = "live",
    ids: list[str] | None = None,
) -> None:
    """What endpoint ``churn``'s collector holds after ``deployment`` (model churn v1) answered
    each of ``rows`` in a request of its own, ``answers`` one each, at time ``at``.

    Written by the real collector, the way the router hands it records, with no server running.
    Request ids are ``ids``, else ``req-0``, ``req-1``...
    """
    from cauce.serving.collector import Collector, Record
    from cauce.serving.endpoints import get_endpoint

    collector = Collector(ws, "churn")
    collector.configure(get_endpoint("churn", workspace=ws).deployments)
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        collector.record(
            Record(
                deployment=deployment,
                source=source,
                model_version="churn/1",
                correlation_id=ids[i] if ids else f"req-{i}",
                timestamp_ms=at,
                latency_ms=1.0,
                request=json.dumps({"dataframe_records": [row]}).encode(),
                content_type="application/json",
                response=json.dumps({"predictions": [answer]}).encode(),
            )
        )
    collector.flush()
    collector.close()
