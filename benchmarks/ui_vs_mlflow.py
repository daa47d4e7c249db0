"""The web UI against MLflow's, on the same runs, timed by the same Playwright script.

The same sweep is logged into both (default 10,000 runs x 20 metrics x 10 params, one
experiment): into a Cauce workspace through the SDK, and into MLflow's SQLite store through
MLflow's own client in its venv (``.bench/mlflow-server-venv``, the full ``mlflow`` package,
whose server ships its UI). Loading is not timed. Then both servers start on loopback and one
headless Chromium (Debian's) opens each experiment's runs page, ``--rounds`` times each, in a
fresh browser context every time (nothing cached):

- **ready**: from the navigation to the moment the newest run's name shows in the runs table
  (Cauce: ``table.runs``; MLflow: its runs grid), as the page's own ``performance.now()``;
- **API**: Cauce's runs page is rendered on the server: its answer time is the API's; MLflow's
  runs page asks ``/ajax-api/2.0/mlflow/runs/search``: the slowest such answer while loading;
- **chart**: a run of Cauce's with one metric of 100,000 steps: from the navigation to its chart
  drawn (downsampled on the server).

Targets (issue 14): Cauce's runs page API ≤ 300 ms, ready ≤ 1 s, ≥ 3x sooner than MLflow's; the
100,000-step chart ≤ 1 s.

    .venv/bin/python benchmarks/ui_vs_mlflow.py            # 10,000 runs
    .venv/bin/python benchmarks/ui_vs_mlflow.py --quick    # 300 runs, 2 rounds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note
from servers import Server, free_port, serving

REPO = Path(__file__).resolve().parents[1]
MLFLOW_VERSION = "3.17.2"  # as server_vs_mlflow.py: 3.18.0's mlflow-tracing is not on the index
DEFAULT_VENV = REPO / ".bench" / "mlflow-server-venv"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXPERIMENT = "sweep"
METRICS, PARAMS = 20, 10
CHART_STEPS = 100_000

# Logs the sweep with MLflow's client into a SQLite store; prints the experiment's id.
MLFLOW_LOADER = textwrap.dedent(
    """
    import sys, time
    import mlflow
    from mlflow.entities import Metric, Param
    mlflow.set_tracking_uri(sys.argv[1])
    runs, metrics, params = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("sweep")
    now = int(time.time() * 1000)
    for i in range(runs):
        run = client.create_run(experiment, run_name=f"trial-{i:05d}", start_time=now + i)
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric(f"m{k:02d}", (i * 7 + k) % 101 / 100, now + i, 0) for k in range(metrics)
            ],
            params=[Param(f"p{k:02d}", str((i + k) % 13)) for k in range(params)],
        )
        client.set_terminated(run.info.run_id, end_time=now + i + 1)
    print(experiment)
    """
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="300 runs, 2 rounds")
    parser.add_argument("--cauce-only", action="store_true", help="no MLflow, no venv")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.rounds = 300, 2
    if not Path(CHROMIUM).exists():
        note("Debian's chromium is not installed (apt-get install -y chromium)")
        return 2
    mlflow_python = None
    if not args.cauce_only:
        mlflow_python = ensure_venv(
            args.venv,
            [f"mlflow=={MLFLOW_VERSION}"],
            f"import mlflow; assert mlflow.__version__ == {MLFLOW_VERSION!r}",
        )
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(load_before=load_average()),
        "runs": args.runs,
        "metrics": METRICS,
        "params": PARAMS,
        "rounds": args.rounds,
    }
    with tempfile.TemporaryDirectory(prefix="cauce-ui-bench-") as tmp:
        folder = Path(tmp)
        chart_run = load_cauce(folder / "cauce", args.runs)
        experiment_id = load_mlflow(folder / "mlflow", args.runs, mlflow_python)
        servers = [cauce_server(folder / "cauce")]
        if mlflow_python is not None:
            servers.append(mlflow_server(folder / "mlflow", mlflow_python))
        with serving(servers, timeout=180):
            results.update(measure(servers, args.rounds, args.runs, chart_run, experiment_id))
    results["machine"]["load_after"] = load_average()
    for line in report(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


# -- loading (not timed) -----------------------------------------------------------------------


def load_cauce(home: Path, runs: int) -> str:
    """The sweep logged into a fresh workspace through the SDK, and a run with a metric of
    100,000 steps; that run's id."""
    home.mkdir(parents=True)
    os.environ.update(CAUCE_HOME=str(home), CAUCE_USER="bench")
    import cauce
    from cauce.store.schema import metrics
    from cauce.workspace import current, reset

    reset()
    note(f"logging {runs} runs into Cauce")
    started = time.perf_counter()
    for i in range(runs):
        with cauce.start_run(experiment=EXPERIMENT, run_name=f"trial-{i:05d}"):
            cauce.log_params({f"p{k:02d}": (i + k) % 13 for k in range(PARAMS)})
            cauce.log_metrics({f"m{k:02d}": (i * 7 + k) % 101 / 100 for k in range(METRICS)})
    with cauce.start_run(experiment="long") as run:
        cauce.log_metric("loss", 1.0, step=0)
    run_id = run.info.run_id  # read once: each look at an active run's info reads it again
    rows = [
        {"run_id": run_id, "key": "loss", "value": 1.0 / (s + 1), "is_nan": False, "step": s,
         "timestamp": 0}
        for s in range(1, CHART_STEPS)
    ]  # fmt: skip
    with current().store.write() as conn:
        conn.execute(metrics.insert(), rows)
    note(f"  {time.perf_counter() - started:.0f} s")
    return run_id


def load_mlflow(folder: Path, runs: int, python: Path | None) -> str | None:
    """The same sweep logged with MLflow's client into its SQLite store; the experiment's id."""
    if python is None:
        return None
    folder.mkdir(parents=True)
    note(f"logging {runs} runs into MLflow")
    started = time.perf_counter()
    found = subprocess.run(
        [str(python), "-c", MLFLOW_LOADER, f"sqlite:///{folder / 'mlflow.db'}", str(runs),
         str(METRICS), str(PARAMS)],
        capture_output=True, text=True, check=True, cwd=folder,
        env={**clean_env(), "MLFLOW_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    note(f"  {time.perf_counter() - started:.0f} s")
    return found.stdout.strip().splitlines()[-1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUCE_", "MLFLOW_"))}
    return {**env, **extra}


def cauce_server(home: Path) -> Server:
    port = free_port()
    env = clean_env(CAUCE_HOME=str(home), CAUCE_USER="bench")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "cauce.cli.main", "server", "--port", str(port)]
    return Server("cauce server", cmd, env, home, port, home / "server.log", "/health")


def mlflow_server(folder: Path, python: Path) -> Server:
    port = free_port()
    cmd = [str(python), "-m", "mlflow", "server", "--backend-store-uri",
           f"sqlite:///{folder / 'mlflow.db'}", "--default-artifact-root",
           str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = clean_env(MLFLOW_DISABLE_TELEMETRY="true")
    return Server("mlflow server", cmd, env, folder, port, folder / "server.log", "/health")


# -- measuring ---------------------------------------------------------------------------------


def measure(
    servers: list[Server], rounds: int, runs: int, chart_run: str, experiment_id: str | None
) -> dict[str, Any]:
    """Each page opened ``rounds`` times in a fresh browser context; the median and all."""
    from playwright.sync_api import sync_playwright

    newest = f"trial-{runs - 1:05d}"
    cauce, mlflow = servers[0], (servers[1] if len(servers) > 1 else None)
    found: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            found["cauce_runs_page"] = rounds_of(rounds, lambda: open_cauce_runs(
                browser, cauce.base, newest))  # fmt: skip
            found["cauce_chart"] = rounds_of(rounds, lambda: open_cauce_chart(
                browser, cauce.base, chart_run))  # fmt: skip
            if mlflow is not None and experiment_id is not None:
                found["mlflow_runs_page"] = rounds_of(rounds, lambda: open_mlflow_runs(
                    browser, mlflow.base, experiment_id, newest))  # fmt: skip
        finally:
            browser.close()
    return found


def rounds_of(rounds: int, once: Any) -> dict[str, Any]:
    samples = [once() for _ in range(rounds + 1)][1:]  # the first warms the server
    ready = [s["ready_ms"] for s in samples]
    api = [s["api_ms"] for s in samples if s.get("api_ms") is not None]
    return {
        "ready_ms": statistics.median(ready),
        "api_ms": statistics.median(api) if api else None,
        "samples": samples,
    }


def open_cauce_runs(browser: Any, base: str, newest: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    answered: list[float] = []
    page.on(
        "requestfinished", lambda r: answered.append(_api_ms(r)) if "/ui/runs" in r.url else None
    )
    page.goto(f"{base}/ui/runs?experiment={EXPERIMENT}", wait_until="commit")
    page.wait_for_selector(f"table.runs >> text={newest}")
    ready = page.evaluate("performance.now()")
    rows = page.locator("table.runs tbody tr").count()
    context.close()
    return {"ready_ms": ready, "api_ms": max(answered, default=None), "rows": rows}


def open_cauce_chart(browser: Any, base: str, run_id: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/ui/runs/{run_id}", wait_until="commit")
    page.wait_for_selector('figure.chart[data-key="loss"].ready >> canvas')
    ready = page.evaluate("performance.now()")
    points = page.locator('figure.chart[data-key="loss"]').get_attribute("data-points")
    context.close()
    return {"ready_ms": ready, "points": int(points or 0)}


def open_mlflow_runs(browser: Any, base: str, experiment_id: str, newest: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    answered: list[float] = []
    page.on("requestfinished",
            lambda r: answered.append(_api_ms(r)) if "runs/search" in r.url else None)  # fmt: skip
    # The runs table of MLflow's "Model training" view (3.x opens a GenAI overview by default).
    url = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    page.goto(url, wait_until="commit")
    page.get_by_text(newest, exact=True).first.wait_for(timeout=120_000)
    ready = page.evaluate("performance.now()")
    context.close()
    return {"ready_ms": ready, "api_ms": max(answered, default=None)}


def _api_ms(request: Any) -> float:
    timing = request.timing
    return float(timing["responseEnd"] - timing["requestStart"])


# -- the report --------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> list[str]:
    cauce = results["cauce_runs_page"]
    chart = results["cauce_chart"]
    lines = [
        f"# UI: {results['runs']} runs x {results['metrics']} metrics x {results['params']} "
        f"params, median of {results['rounds']} rounds ({results['started']})",
        f"Cauce runs page: API {fmt(cauce['api_ms'])}, table ready {fmt(cauce['ready_ms'])} "
        f"(targets 300 ms, 1 s)",
        f"Cauce chart of {CHART_STEPS:,} steps: drawn {fmt(chart['ready_ms'])} "
        f"({chart['samples'][0]['points']} points; target 1 s)",
    ]
    mlflow = results.get("mlflow_runs_page")
    if mlflow is not None:
        ratio = mlflow["ready_ms"] / cauce["ready_ms"]
        lines.append(
            f"MLflow {MLFLOW_VERSION} runs page: search API {fmt(mlflow['api_ms'])}, ready "
            f"{fmt(mlflow['ready_ms'])}: Cauce ready {ratio:.1f}x sooner (target 3x)"
        )
    return lines


def fmt(ms: float | None) -> str:
    return "n/a" if ms is None else f"{ms:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
