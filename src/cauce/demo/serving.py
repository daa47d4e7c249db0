"""The demo's serving chapter: the champion behind an endpoint, a challenger rolled out and
promoted, and a broken candidate rolled back by the analysis on its own.

The endpoint runs as ``cauce endpoints serve`` in a child process, exactly as a user would run
it; simulated customers call it from threads here while the rollouts run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from cauce.workspace import Workspace

ENDPOINT = "churn"
# Short intervals for a demo; on a slow machine intervals stay inconclusive (too few requests)
# and the rollout simply takes longer, rather than pausing for a person.
ANALYSIS = {
    "interval": "2s",
    "failure_limit": 2,
    "min_requests": 5,
    "min_predictions": 40,
    "inconclusive_limit": 60,
    "metrics": [
        {"name": "error_rate", "max": 0.01},
        {"name": "latency_p99_ms", "max": 500},
        {"name": "prediction_drift", "max": 0.2},
    ],
}


@dataclass
class Traffic:
    """Simulated customers: threads that score rows of the test set until stopped."""

    url: str
    rows: list[dict[str, Any]]
    answered: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int = 3) -> None:
        """Start the clients."""
        for i in range(clients):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _client(self, offset: int) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = offset
            while not self._stop.is_set():
                batch = [self.rows[(i + k) % len(self.rows)] for k in range(1 + i % 3)]
                started = time.perf_counter()
                try:
                    reply = client.post("/invocations", json={"dataframe_records": batch})
                    ok = reply.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.answered += 1
                    self.latencies.append((time.perf_counter() - started) * 1000)
                else:
                    self.failed += 1
                i += 3
                time.sleep(0.005)

    def stop(self) -> None:
        """Stop the clients."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _apply(documents: list[dict[str, Any]], ws: Workspace) -> None:
    from cauce.specs import apply_file

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as spec:
        spec.write("\n---\n".join(json.dumps(d) for d in documents))  # JSON is YAML
    try:
        apply_file(spec.name, workspace=ws)
    finally:
        os.unlink(spec.name)


def _wait_ready(url: str, deployment: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{url}/v2/health/ready", timeout=2).json()
            if health.get("deployments", {}).get(deployment):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"deployment {deployment} did not become ready within {timeout:.0f}s")


def _roll_out(ws: Workspace, candidate: str, out: Console, label: str, timeout: float = 120) -> Any:
    """Start a rollout of ``candidate``, print its stages as they pass, return how it ended."""
    from cauce.serving import rollouts

    spec = {
        "kind": "Rollout",
        "endpoint": ENDPOINT,
        "candidate": candidate,
        "steps": [{"weight": 10, "pause": "2s"}, {"weight": 50, "pause": "2s"}, {"weight": 100}],
        "analysis": ANALYSIS,
    }
    _apply([spec], ws)
    seen = 0
    deadline = time.monotonic() + timeout
    while True:
        rollout = rollouts.status(ENDPOINT, workspace=ws)
        for decision in rollout.decisions[seen:]:
            if decision.decision in ("start", "advance", "fail", "promote", "rollback", "pause"):
                weight = (
                    "mirror"
                    if decision.stage < 0
                    else f"{rollout.spec['steps'][decision.stage]['weight']}%"
                )
                out.print(f"   {label} {decision.decision:<8} at {weight:>4}  {decision.reason}")
        seen = len(rollout.decisions)
        if rollout.state not in ("running",) or time.monotonic() > deadline:
            return rollout
        time.sleep(0.3)


def run(
    ws: Workspace,
    test_rows: pd.DataFrame,
    challenger: Any,
    silver: Any,
    recipe: str,
    out: Console,
) -> dict[str, Any]:
    """The serving chapter; ``challenger`` is ``recipe`` fitted on every row of ``silver``."""
    import cauce
    from cauce.demo.pipeline import LABEL
    from cauce.serving import rollouts

    features = test_rows.drop(columns=LABEL)
    example = features.head(5)
    records = json.loads(features.to_json(orient="records"))

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    _apply(
        [
            {"kind": "Endpoint", "name": ENDPOINT, "traffic": {"blue": 100}},
            {
                "kind": "Deployment",
                "endpoint": ENDPOINT,
                "name": "blue",
                "model": "models:/churn@champion",
                "collect": {"sampling": 1.0},
            },
        ],
        ws,
    )
    log = ws.settings.state_dir / "logs" / "demo-serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as serve_log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cauce.cli.main",
                "endpoints",
                "serve",
                ENDPOINT,
                "--port",
                str(port),
            ],
            stdout=serve_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CAUCE_HOME": str(ws.settings.root)},
            start_new_session=True,
        )
    traffic = Traffic(url, records)
    try:
        _wait_ready(url, "blue")
        traffic.start(clients=4)
        time.sleep(2)
        champion = cauce.models.resolve("models:/churn@champion", workspace=ws)
        out.print(
            f"6. serving   {ENDPOINT} v{champion.version} deployed as blue at {url}; "
            f"{traffic.answered} requests answered so far, collector on"
        )

        # A challenger: the champion's recipe fitted on more data, rolled out 10% → 50% → 100%.
        with cauce.start_run(experiment="churn", run_name="challenger") as run:
            cauce.log_input(silver, context="training")
            cauce.set_tags({"recipe": recipe, "trained_on": "every silver row"})
            cauce.log_model(challenger, "model", input_example=example)
        version = cauce.models.register(f"runs:/{run.run_id}/model", "churn", workspace=ws)
        cauce.models.set_alias("churn", "challenger", version.version, workspace=ws)
        _apply(
            [
                {
                    "kind": "Deployment",
                    "endpoint": ENDPOINT,
                    "name": "green",
                    "model": "models:/churn@challenger",
                    "collect": {"sampling": 1.0},
                }
            ],
            ws,
        )
        _wait_ready(url, "green")
        out.print(f"7. rollout   challenger churn v{version.version} deployed as green")
        green = _roll_out(ws, "green", out, "green")
        if green.state in ("running", "paused"):  # it ran out of time: hand the traffic back
            green = rollouts.abort(ENDPOINT, reason="the demo ran out of time", workspace=ws)
        champion_now = cauce.models.resolve("models:/churn@champion", workspace=ws)
        out.print(
            f"   green {green.state}: champion → churn v{champion_now.version}; "
            f"traffic {_traffic(ws)}"
        )

        # A broken candidate: it answers, but with the opposite of the champion's predictions.
        broken = _register_broken(challenger, example, ws)
        _apply(
            [
                {
                    "kind": "Deployment",
                    "endpoint": ENDPOINT,
                    "name": "red",
                    "model": f"models:/churn/{broken}",
                    "collect": {"sampling": 1.0},
                }
            ],
            ws,
        )
        _wait_ready(url, "red")
        out.print(
            f"8. rollback  broken candidate churn v{broken} (inverted predictions) deployed as red"
        )
        red = _roll_out(ws, "red", out, "red  ")
        out.print(f"   red {red.state}: {red.reason}")
    finally:
        traffic.stop()
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    latencies = sorted(traffic.latencies) or [0.0]
    out.print(
        f"   traffic   {traffic.answered:,} requests answered, {traffic.failed} failed, "
        f"p50 {latencies[len(latencies) // 2]:.1f} ms; final split {_traffic(ws)}"
    )
    return {
        "url": url,
        "answered": traffic.answered,
        "failed": traffic.failed,
        "green": green.state,
        "red": red.state,
        "red_reason": red.reason,
        "champion": champion_now.version,
    }


def _traffic(ws: Workspace) -> str:
    from cauce.serving.endpoints import get_endpoint

    traffic = get_endpoint(ENDPOINT, workspace=ws).traffic
    return ", ".join(f"{k}={v}%" for k, v in traffic.items())


def _register_broken(model: Any, example: pd.DataFrame, ws: Workspace) -> int:
    """A Python model that calls the real one and inverts its answer."""
    import cauce

    def inverted(data: Any) -> Any:
        return 1 - model.predict(data)

    with cauce.start_run(experiment="churn", run_name="broken-candidate") as run:
        cauce.log_model(inverted, "model", input_example=example)
    return cauce.models.register(f"runs:/{run.run_id}/model", "churn", workspace=ws).version
