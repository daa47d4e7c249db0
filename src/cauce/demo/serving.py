"""The demo's serving chapters and the closed loop: the champion behind an endpoint, watched by
a monitor; traffic that drifts; the alert that retrains, gates and rolls out a challenger which
is promoted; a broken candidate rolled back by the analysis on its own.

The endpoint runs as ``cauce endpoints serve`` in a child process, exactly as a user would run
it; simulated customers call it from threads here, and their true outcomes arrive later as a
labels dataset, as they would from a CRM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.server import formats

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


CANARY_STEPS = [{"weight": 10, "pause": "2s"}, {"weight": 50, "pause": "2s"}, {"weight": 100}]
MONITOR = "churn-drift"
# The monitor's window: the demo's traffic drifts for about this long before the monitor runs.
WINDOW_S = 8


@dataclass
class Traffic:
    """Simulated customers: threads that score rows until stopped. ``rows`` may be swapped
    while they run; ``sent`` keeps each request's id and the true outcome of each of its rows."""

    url: str
    rows: list[dict[str, Any]]
    outcomes: list[int]
    answered: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    sent: list[tuple[str, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int = 3) -> None:
        """Start the clients."""
        for i in range(clients):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _client(self, offset: int) -> None:
        import uuid

        import httpx

        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = offset
            while not self._stop.is_set():
                rows, outcomes = self.rows, self.outcomes
                picked = [(i + k) % len(rows) for k in range(1 + i % 3)]
                request_id = uuid.uuid4().hex
                started = time.perf_counter()
                try:
                    reply = client.post(
                        "/invocations",
                        json={"dataframe_records": [rows[j] for j in picked]},
                        headers={"x-request-id": request_id},
                    )
                    ok = reply.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.answered += 1
                    self.latencies.append((time.perf_counter() - started) * 1000)
                    self.sent += [(request_id, n, outcomes[j]) for n, j in enumerate(picked)]
                else:
                    self.failed += 1
                i += 3
                time.sleep(0.005)

    def switch(self, rows: list[dict[str, Any]], outcomes: list[int]) -> None:
        """Send these rows from now on."""
        self.rows, self.outcomes = rows, outcomes

    def labels(self) -> pd.DataFrame:
        """The outcomes of every answered request's rows, as a labels dataset holds them."""
        import pandas as pd

        return pd.DataFrame(list(self.sent), columns=["correlation_id", "row", "churned"])

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


def apply_documents(documents: list[dict[str, Any]], ws: Workspace | None = None) -> None:
    """Apply spec documents as ``cauce apply -f`` would."""
    from cauce.specs import apply

    apply(documents, workspace=ws)


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


def _roll_out(ws: Workspace, candidate: str, out: Console, label: str) -> Any:
    """Start a rollout of ``candidate`` and follow it to its end."""
    spec = {
        "kind": "Rollout",
        "endpoint": ENDPOINT,
        "candidate": candidate,
        "steps": CANARY_STEPS,
        "analysis": ANALYSIS,
    }
    apply_documents([spec], ws)
    return _follow(ws, out, label)


def _follow(
    ws: Workspace, out: Console, label: str, timeout: float = 120, endpoint: str = ENDPOINT
) -> Any:
    """Print the running rollout's stages as they pass; return how it ended (or where it was
    when the time ran out: then its traffic is handed back to the stable deployment)."""
    from cauce.serving import rollouts

    seen = 0
    deadline = time.monotonic() + timeout
    while True:
        rollout = rollouts.status(endpoint, workspace=ws)
        for step in _steps(rollout, rollout.decisions[seen:]):
            weight = step["weight"] if step["weight"] == "mirror" else f"{step['weight']}%"
            out.print(f"   {label} {step['decision']:<8} at {weight:>4}  {step['reason']}")
        seen = len(rollout.decisions)
        if rollout.state != "running":
            return rollout
        if time.monotonic() > deadline:
            return rollouts.abort(endpoint, reason="the demo ran out of time", workspace=ws)
        time.sleep(0.3)


def _steps(rollout: Any, decisions: list[Any] | None = None) -> list[dict[str, Any]]:
    """The rollout's decisions that move it (not each passing analysis): what was decided, at
    which weight (or ``mirror``), why, and what was measured."""
    return [
        {
            "decision": d.decision,
            "weight": "mirror" if d.stage < 0 else rollout.spec["steps"][d.stage]["weight"],
            "reason": d.reason,
            "measured": d.measured,
        }
        for d in (rollout.decisions if decisions is None else decisions)
        if d.decision in ("start", "advance", "fail", "promote", "rollback", "pause")
    ]


def _records(frame: pd.DataFrame) -> tuple[list[dict[str, Any]], list[int]]:
    from cauce.demo.pipeline import LABEL

    features = frame.drop(columns=LABEL)
    return json.loads(features.to_json(orient="records")), frame[LABEL].astype(int).tolist()


def _monitor_spec(silver: Any, recipe: str, fast: bool) -> dict[str, Any]:
    from pathlib import Path

    from cauce.demo import retraining

    return {
        "kind": "Monitor",
        "name": MONITOR,
        "target": {"endpoint": ENDPOINT},
        "reference": {"model": "models:/churn@champion"},
        "window": {"size": f"{WINDOW_S}s"},
        "signals": [
            {"data_drift": {"threshold": 0.1, "drift_share": 0.25}},
            {"prediction_drift": {"metric": "jensen_shannon", "threshold": 0.1}},
            {"data_quality": {"null_rate": 0.01, "out_of_bounds_rate": 0.05}},
            {
                "model_performance": {
                    "metric": "accuracy",
                    "min": 0.72,
                    "labels": {"dataset": "churn_labels", "label": "churned"},
                    "min_labels": 50,
                }
            },
        ],
        "on_alert": [
            {
                "trigger": {
                    "pipeline": f"{Path(retraining.__file__)}:retraining",
                    "params": {
                        "batch": "customers_recent",
                        "earlier": silver.ref,
                        "recipe": recipe,
                        "fast": fast,
                    },
                }
            },
        ],
        "cooldown": "1h",
    }


def _signals(run: Any) -> dict[str, Any]:
    """The headline numbers of a monitor run: drift per feature, prediction drift, accuracy."""
    values = {(v["signal"], v["feature"]): v for v in run.values}
    share = values.get(("data_drift", "*"), {})
    drift = {
        f: v["value"] for (signal, f), v in values.items() if signal == "data_drift" and f != "*"
    }
    accuracy = values.get(("model_performance", "*"), {})
    measured = accuracy.get("value") is not None
    return {
        "run": run.id,
        "status": run.status,
        "features": len(drift),
        "drifted": (share.get("details") or {}).get("drifted", []),
        "drift": drift,
        "prediction_drift": values.get(("prediction_drift", "prediction"), {}).get("value"),
        "accuracy": accuracy.get("value"),
        "labelled": accuracy["details"]["labelled"] if measured else None,
    }


def _signal_line(signals: dict[str, Any]) -> str:
    """:func:`_signals` in a line."""
    drifted = signals["drifted"]
    parts = [f"{len(drifted)}/{signals['features']} features drifted"]
    if drifted:
        shown = [f"{name} {signals['drift'][name]:.2f}" for name in drifted[:4]]
        parts[-1] += f" ({', '.join(shown)})"
    if signals["prediction_drift"] is not None:
        parts.append(f"prediction drift {signals['prediction_drift']:.3f}")
    if signals["accuracy"] is not None:
        parts.append(
            f"accuracy {signals['accuracy']:.3f} on {signals['labelled']:,} labelled predictions"
        )
    return "; ".join(parts)


def run(
    ws: Workspace,
    test_rows: pd.DataFrame,
    silver: Any,
    recipe: str,
    out: Console,
    fast: bool = False,
) -> list[dict[str, Any]]:
    """Serving and the closed loop, from the champion served to a retrained champion; the
    results of each stage (serving, monitoring, decay, alert, retraining, rollout, rollback,
    traffic)."""
    import cauce
    from cauce.demo.generate import customers
    from cauce.demo.pipeline import LABEL
    from cauce.monitoring.monitors import run_monitor
    from cauce.pipelines.runs import get_pipeline_run

    example = test_rows.drop(columns=LABEL).head(5)
    normal, normal_outcomes = _records(test_rows)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    apply_documents(
        [
            {"kind": "Endpoint", "name": ENDPOINT, "traffic": {"blue": 100}},
            {
                "kind": "Deployment",
                "endpoint": ENDPOINT,
                "name": "blue",
                "model": "models:/churn@champion",
                "collect": {"sampling": 1.0},
            },
            _monitor_spec(silver, recipe, fast),
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
    traffic = Traffic(url, normal, normal_outcomes)
    stages: list[dict[str, Any]] = []
    try:
        _wait_ready(url, "blue")
        traffic.start(clients=4)
        champion = cauce.models.resolve("models:/churn@champion", workspace=ws)
        _pause(WINDOW_S, "customers calling the champion", out)
        out.print(
            f"6. serving   {ENDPOINT} v{champion.version} deployed as blue at {url}; "
            f"{traffic.answered} requests answered so far, collector on"
        )
        stages.append(
            {
                "stage": "serving",
                "endpoint": ENDPOINT,
                "deployment": "blue",
                "model": champion.uri,
                "version": champion.version,
                "url": url,
                "answered": traffic.answered,
            }
        )
        cauce.data.register("churn_labels", traffic.labels(), workspace=ws)
        before = _signals(run_monitor(MONITOR, workspace=ws))
        out.print(
            f"7. monitor   {MONITOR} over the last {WINDOW_S}s: {before['status']}; "
            f"{_signal_line(before)}"
        )
        stages.append({"stage": "monitoring", "monitor": MONITOR, "window_s": WINDOW_S, **before})

        # Decay: the market moves. Traffic comes from the new population, and a fresh labelled
        # batch of it lands in bronze.
        fresh = customers(2000 if fast else 6000, seed=23, drifted=True)
        drifted, drifted_outcomes = _records(fresh[test_rows.columns].dropna())
        traffic.switch(drifted, drifted_outcomes)
        batch = cauce.data.register("customers_recent", fresh, layer="bronze", workspace=ws)
        _pause(WINDOW_S + 1, "the market moves: drifted traffic", out)
        cauce.data.register("churn_labels", traffic.labels(), workspace=ws)
        out.print(
            f"8. decay     traffic drifts (more month-to-month and fiber, prices up); fresh "
            f"batch customers_recent v{batch.version} ({batch.row_count:,} rows) lands in bronze"
        )
        stages.append({"stage": "decay", "batch": {"ref": batch.ref, "rows": batch.row_count}})
        # The demo is a script: it runs the alert's actions (the retraining) in the foreground
        # rather than leaving them queued for an agent.
        judged = run_monitor(MONITOR, workspace=ws, wait=True)
        after, alert = _signals(judged), judged.alert
        out.print(f"   monitor   {after['status']}: {_signal_line(after)}")
        if alert is None:
            raise RuntimeError("the drifted traffic raised no alert")
        out.print(
            f"   alert     {alert.id[:12]} → "
            + ", ".join(f"{a.action} {a.status}" for a in alert.actions)
        )
        stages.append(
            {
                "stage": "alert",
                "monitor": MONITOR,
                "window_s": WINDOW_S,
                **after,
                "alert": alert.id,
                "breaches": alert.breaches,
                "actions": [
                    {"action": a.action, "target": a.target, "status": a.status}
                    for a in alert.actions
                ],
            }
        )
        triggered = next(a for a in alert.actions if a.action == "trigger")
        if triggered.status != "succeeded" or triggered.result is None:
            raise RuntimeError(f"the retraining pipeline failed: {triggered.error}")
        retrained = get_pipeline_run(triggered.result["pipeline_run_id"], workspace=ws)
        registered = retrained.output("register_challenger")
        passed = sum(r["passed"] for r in registered["gate"])
        compared = next((r for r in registered["gate"] if r["kind"] == "regression"), None)
        took = formats.duration(retrained.start_time, retrained.end_time)
        out.print(
            f"9. retrain   pipeline retraining ({len(retrained.steps)} steps, {took}): "
            f"churn v{registered['version']} passed the gate {passed}/{len(registered['gate'])}"
            + (f" ({compared['message'].split(':')[0]})" if compared else "")
            + f"; alias challenger → v{registered['version']}"
        )
        stages.append(
            {
                "stage": "retraining",
                "pipeline_run": retrained.id,
                "steps": len(retrained.steps),
                "seconds": took,
                "version": registered["version"],
                "gate": {
                    "passed": passed == len(registered["gate"]),
                    "rules_passed": passed,
                    "rules": registered["gate"],
                    "compared": compared["details"] if compared else None,
                },
                "aliases": {"challenger": registered["version"]},
            }
        )
        _wait_ready(url, "green")
        green = _follow(ws, out, "green")
        champion_now = _champion_after(ws, green.state, registered["version"])
        out.print(
            f"10. canary   green {green.state}: champion → churn v{champion_now.version}; "
            f"traffic {_split(_traffic(ws))}"
        )
        stages.append(
            {
                "stage": "rollout",
                "deployment": "green",
                "version": registered["version"],
                "state": green.state,
                "decisions": _steps(green),
                "aliases": {"champion": champion_now.version},
                "traffic": _traffic(ws),
            }
        )

        # A broken candidate: it answers, but flags every customer as about to churn.
        broken = _register_broken(example, ws)
        apply_documents(
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
            f"11. rollback broken candidate churn v{broken} (flags every customer) deployed as red"
        )
        red = _roll_out(ws, "red", out, "red  ")
        out.print(f"   red {red.state}: {red.reason}")
        stages.append(
            {
                "stage": "rollback",
                "deployment": "red",
                "version": broken,
                "state": red.state,
                "reason": red.reason,
                "decisions": _steps(red),
                "failed_metrics": sorted(
                    {
                        name
                        for d in red.decisions
                        for name, measured in d.measured.items()
                        if measured.get("ok") is False
                    }
                ),
            }
        )
    finally:
        traffic.stop()
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    latencies = sorted(traffic.latencies) or [0.0]
    p50 = latencies[len(latencies) // 2]
    out.print(
        f"   traffic   {traffic.answered:,} requests answered, {traffic.failed} failed, "
        f"p50 {p50:.1f} ms; final split {_split(_traffic(ws))}"
    )
    stages.append(
        {
            "stage": "traffic",
            "answered": traffic.answered,
            "failed": traffic.failed,
            "p50_ms": p50,
            "traffic": _traffic(ws),
        }
    )
    return stages


def _pause(seconds: float, what: str, out: Console) -> None:
    """Wait while traffic flows, with a progress bar that goes away when done."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(f"   {what}"), BarColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out, transient=True) as bar:
        task = bar.add_task(what, total=seconds)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.2, left))
            bar.update(task, completed=seconds - max(left, 0.0))


def _champion_after(ws: Workspace, state: str, version: int, timeout: float = 10) -> Any:
    """The champion once a promotion has moved the alias (the controller moves it just after)."""
    import cauce

    deadline = time.monotonic() + timeout
    while True:
        champion = cauce.models.resolve("models:/churn@champion", workspace=ws)
        if state != "promoted" or champion.version == version or time.monotonic() > deadline:
            return champion
        time.sleep(0.2)


def _traffic(ws: Workspace) -> dict[str, int]:
    from cauce.serving.endpoints import get_endpoint

    return dict(get_endpoint(ENDPOINT, workspace=ws).traffic)


def _split(traffic: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}%" for k, v in traffic.items())


def _register_broken(example: pd.DataFrame, ws: Workspace) -> int:
    """A Python model with a broken threshold: it flags every customer as about to churn."""
    import cauce

    def everyone(data: Any) -> Any:
        import numpy as np

        return np.ones(len(data), dtype=int)

    with cauce.start_run(experiment="churn", run_name="broken-candidate") as run:
        cauce.log_model(everyone, "model", input_example=example)
    return cauce.models.register(f"runs:/{run.run_id}/model", "churn", workspace=ws).version
