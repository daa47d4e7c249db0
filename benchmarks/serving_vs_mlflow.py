"""Cauce's model serving against ``mlflow models serve``: same model, same workers, same load.

One scikit-learn pipeline (a churn classifier: 15 numerical and 4 categorical columns, scaling and
one-hot encoding, a 100-tree random forest) is trained once on generated data and pickled to
``.bench/serving/``. Each side logs that identical estimator as registered model ``bench``
version 1 in a fresh store (``serving_worker.py``: Cauce with this interpreter, MLflow in
``.bench/mlflow-venv``) and serves it on loopback with the same number of worker processes:
``mlflow models serve --env-manager local --workers W`` and ``cauce endpoints serve``. The load
comes from a separate process, ``loadgen.py`` (raw keep-alive HTTP/1.1, one connection per
client, bounded by a request count and a duration), run with this interpreter for every side;
every request is ``POST /invocations`` with the same ``dataframe_split`` body. The model is
built in ``serving_model.py``; the server processes are handled by ``servers.py``.

Three measurements, each in turns over several rounds (the order of the sides rotates), so that
a busy neighbour on the machine slows every side alike; a figure is the median over the rounds:

- **throughput**: answered requests per second at 16 concurrent clients, W=2 on both sides:
  Cauce (batching off, the like-for-like figure; and batching on, for reference) vs MLflow;
- **router overhead**: p50 latency through ``cauce endpoints serve`` (traffic split 90/10 and the
  data collector on) minus p50 calling the deployment's own port, one client that takes the
  deployment, the router and MLflow in turn (so that a busy machine slows them alike);
- **adaptive batching**: Cauce's throughput at 64 concurrent clients, batching on vs off.

The CPU time of each side's server processes is recorded for every turn (from ``/proc``): CPU
time per answered request is the steadier figure when other work shares the machine. Every server
runs in its own process group and is stopped (SIGTERM, then SIGKILL, then any left-over
descendant) when the script ends, whatever happens; ports are chosen by binding port 0. The
exit status is 2 when a measurement could not be made or the servers disagree on the answer.

Example::

    python benchmarks/serving_vs_mlflow.py --json .bench/serving.json
    python benchmarks/serving_vs_mlflow.py --quick --cauce-only      # smoke test, ~1 min
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note
from servers import Server, free_port, post_json, serving
from serving_model import ensure_model, sklearn_version

MLFLOW_VERSION = "3.17.2"
REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
WORKER = HERE / "serving_worker.py"
DEFAULT_VENV = REPO / ".bench" / "mlflow-venv"
DATA_DIR = REPO / ".bench" / "serving"
WORKERS = 2
CAUCE_READY = "/v2/health/ready"  # 200 once every deployment can answer (/ping is up earlier)
MLFLOW_READY = "/ping"


@dataclass(frozen=True)
class Counts:
    """How much load each turn sends; the sides take turns ``rounds`` times."""

    rounds: int
    throughput_clients: int
    throughput_requests: int
    latency_requests: int  # per URL: the deployment, the router (and MLflow), in turn
    batching_clients: int
    batching_requests: int
    warmup: int
    duration_max_s: float
    startup_timeout_s: float


# A turn is bounded by its request count or duration_max_s, whichever comes first: at the
# 20-600 requests/s this model allows on 2 cores, a full run takes about 6 minutes.
FULL = Counts(
    rounds=3,
    throughput_clients=16,
    throughput_requests=1500,
    latency_requests=200,
    batching_clients=64,
    batching_requests=2500,
    warmup=100,
    duration_max_s=12.0,
    startup_timeout_s=180.0,
)
QUICK = Counts(
    rounds=1,
    throughput_clients=4,
    throughput_requests=60,
    latency_requests=30,
    batching_clients=64,
    batching_requests=200,
    warmup=10,
    duration_max_s=10.0,
    startup_timeout_s=120.0,
)


@dataclass(frozen=True)
class Target:
    """What Cauce must reach: a ratio of at least ``value``, or a difference of at most it."""

    kind: str  # "ratio" or "max_ms"
    value: float

    def describe(self) -> str:
        """The target as the table prints it."""
        return f">= {self.value:g}x" if self.kind == "ratio" else f"<= {self.value:g} ms"

    def met(self, figure: float | None) -> bool | None:
        """Whether the target is met; None when it cannot be judged."""
        if figure is None:
            return None
        return figure >= self.value if self.kind == "ratio" else figure <= self.value


TARGETS = {
    "throughput": Target("ratio", 1.5),
    "router_overhead": Target("max_ms", 1.0),
    "batching": Target("ratio", 3.0),
}


# -- environments and the model -------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CAUCE_* and MLFLOW_* settings, MLflow telemetry off, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUCE_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def ensure_mlflow_venv(venv: Path) -> Path:
    """``venv`` with MLflow, skops and this interpreter's scikit-learn; its python."""
    sk = sklearn_version()
    requirements = (f"mlflow=={MLFLOW_VERSION}", "skops", f"scikit-learn=={sk}")
    ready = (
        "import mlflow, sklearn, skops, sys; "
        f"sys.exit(mlflow.__version__ != {MLFLOW_VERSION!r} or sklearn.__version__ != {sk!r})"
    )
    return ensure_venv(venv, requirements, ready, env=clean_env())


def log_model(python: Path, side: str, model: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Log the pickled model as ``bench`` v1 with one side's library, in a fresh process."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "logged.json"
    cmd = [str(python), str(WORKER), "--side", side, "--model", model["model"]]
    cmd += ["--example", model["example"], "--dir", str(folder), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), cwd=folder)
    if proc.returncode != 0:
        raise SystemExit(f"logging the model with {side} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# -- servers --------------------------------------------------------------------------------


def check_scores(server: Server, body: bytes) -> dict[str, Any]:
    """One request before the load: it must answer 200; the answer is kept for comparison."""
    status, text = post_json(server.base + "/invocations", body)
    if status != 200:
        raise SystemExit(
            f"{server.name} answered {status} to the benchmark's request: {text[:1000]}\n"
            + server.log_tail()
        )
    return {"status": status, "body": text[:1000], "predictions": _predictions(text)}


def _predictions(text: str) -> Any:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload.get("predictions") if isinstance(payload, dict) else payload


def cauce_command() -> list[str]:
    """The ``cauce`` CLI of this interpreter."""
    script = Path(sys.executable).with_name("cauce")
    if script.exists():
        return [str(script)]
    found = shutil.which("cauce")
    if found is None:
        raise SystemExit("the cauce command is not installed next to this interpreter")
    return [found]


# -- load -----------------------------------------------------------------------------------


@dataclass
class Turn:
    """One side's share of a measurement: where the load goes and what came back each round.

    With several URLs, one loadgen process sends to them in turn (``latency``): each round's
    result then holds one summary per URL under ``targets`` and the paired differences.
    """

    name: str
    urls: list[str]
    servers: list[Server]
    results: list[dict[str, Any]] = field(default_factory=list)


def run_load(
    urls: list[str], body: Path, clients: int, requests: int, counts: Counts
) -> dict[str, Any]:
    """One bounded loadgen run against ``urls`` in its own process; its summary and CPU time."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    cmd = [sys.executable, str(LOADGEN), "--body-file", str(body)]
    for url in urls:
        cmd += ["--url", url]
    cmd += ["--concurrency", str(clients), "--requests", str(requests)]
    cmd += ["--duration-max", str(counts.duration_max_s), "--warmup", str(counts.warmup)]
    cmd += ["--json", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"loadgen failed against {urls}:\n{proc.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    result["loadgen_cpu_s"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    result.pop("latencies_ms", None)
    return result


def take_turns(
    what: str,
    turns: list[Turn],
    body: Path,
    clients: int,
    requests: int,
    counts: Counts,
) -> None:
    """Load every side in turn, ``rounds`` times, the order rotating each round.

    The CPU time of each side's server processes over its turn is recorded too: per answered
    request, it is the steadier figure on a machine that other work shares.
    """
    for round_no in range(counts.rounds):
        shift = round_no % len(turns)
        for turn in turns[shift:] + turns[:shift]:
            note(f"{what}, round {round_no + 1}/{counts.rounds}: {turn.name} ({clients} clients)")
            cpu_before = {server.name: server.cpu_s() for server in turn.servers}
            started = time.perf_counter()
            result = run_load(turn.urls, body, clients, requests, counts)
            elapsed = time.perf_counter() - started
            served = result["answered"] + counts.warmup
            result["server_cpu_s_by_server"] = {
                server.name: server.cpu_s() - cpu_before[server.name] for server in turn.servers
            }
            result["server_cpu_s"] = sum(result["server_cpu_s_by_server"].values())
            result["server_cpu_ms_per_request"] = 1000 * result["server_cpu_s"] / max(served, 1)
            result["server_cores"] = result["server_cpu_s"] / elapsed
            result["elapsed_s"] = elapsed
            for t in result["targets"] if len(turn.urls) > 1 else [result]:
                lat = t["latency_ms"]
                note(
                    f"  {t['throughput_rps']:.1f} req/s, p50 {_fmt_ms(lat['p50'])}, "
                    f"p99 {_fmt_ms(lat['p99'])}, ok {t['ok']}/{t['answered']}"
                    + (f", errors {t['errors']}" if t["errors"] else "")
                    + (f" ({t['url']})" if len(turn.urls) > 1 else "")
                )
            turn.results.append(result)


def summarize(rounds: list[dict[str, Any]], cpu: bool = True) -> dict[str, Any]:
    """A side's figures: medians over the rounds of throughput and of each percentile."""
    return {
        "url": rounds[0]["url"],
        "throughput_rps": statistics.median(r["throughput_rps"] for r in rounds),
        "p50_ms": _median_or_none([r["latency_ms"]["p50"] for r in rounds]),
        "p90_ms": _median_or_none([r["latency_ms"]["p90"] for r in rounds]),
        "p99_ms": _median_or_none([r["latency_ms"]["p99"] for r in rounds]),
        "requests": sum(r["answered"] + sum(r["errors"].values()) for r in rounds),
        "ok": sum(r["ok"] for r in rounds),
        "failed": sum(r["answered"] - r["ok"] + sum(r["errors"].values()) for r in rounds),
        "server_cpu_ms_per_request": statistics.median(
            r["server_cpu_ms_per_request"] for r in rounds
        )
        if cpu
        else None,
        "server_cores": statistics.median(r["server_cores"] for r in rounds) if cpu else None,
        "rounds": rounds,
    }


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# -- the measurements -----------------------------------------------------------------------


def spec_yaml(model_uri: str) -> str:
    """The endpoints Cauce serves: plain (W=2), batching on (W=2), split 90/10 with collector."""
    collect = "collect: {requests: true, responses: true, sampling: 1.0}"
    docs = [
        "kind: Endpoint\nname: bench\ntraffic: {blue: 100}",
        f"kind: Deployment\nendpoint: bench\nname: blue\nmodel: {model_uri}\nworkers: {WORKERS}",
        "kind: Endpoint\nname: bench-batch\ntraffic: {blue: 100}",
        f"kind: Deployment\nendpoint: bench-batch\nname: blue\nmodel: {model_uri}\n"
        f"workers: {WORKERS}\nbatching: {{max_batch_size: 64, max_latency_ms: 2}}",
        "kind: Endpoint\nname: bench-split\ntraffic: {blue: 90, green: 10}",
        f"kind: Deployment\nendpoint: bench-split\nname: blue\nmodel: {model_uri}\n"
        f"workers: 1\n{collect}",
        f"kind: Deployment\nendpoint: bench-split\nname: green\nmodel: {model_uri}\n"
        f"workers: 1\n{collect}",
    ]
    return "\n---\n".join(docs) + "\n"


def setup_cauce(model: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A fresh workspace: the model logged as ``bench`` v1 and the endpoints applied."""
    logged = log_model(Path(sys.executable), "cauce", model, folder)
    spec = folder / "endpoints.yaml"
    spec.write_text(spec_yaml(logged["model_uri"]))
    proc = subprocess.run(
        [*cauce_command(), "apply", "-f", str(spec)],
        capture_output=True,
        text=True,
        env=clean_env(CAUCE_HOME=str(folder)),
        cwd=folder,
    )
    if proc.returncode != 0:
        raise SystemExit(f"cauce apply failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    logged["spec"] = spec.read_text()
    return logged


def cauce_server(name: str, args: list[str], folder: Path, logs: Path) -> Server:
    """A ``cauce`` serving command on a free port of 127.0.0.1."""
    port = free_port()
    cmd = [*cauce_command(), *args, "--host", "127.0.0.1", "--port", str(port)]
    env = clean_env(CAUCE_HOME=str(folder))
    return Server(name, cmd, env, folder, port, logs / f"{name}.log", ready_path=CAUCE_READY)


def mlflow_server(python: Path, logged: dict[str, Any], folder: Path, logs: Path) -> Server:
    """``mlflow models serve`` of the logged version with W uvicorn workers, local environment."""
    port = free_port()
    cmd = [str(python), "-m", "mlflow", "models", "serve", "-m", logged["model_uri"]]
    cmd += ["--env-manager", "local", "--workers", str(WORKERS)]
    cmd += ["-h", "127.0.0.1", "-p", str(port)]
    # As in an activated venv: MLflow execs ``uvicorn`` by name.
    path = f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = clean_env(MLFLOW_TRACKING_URI=logged["tracking_uri"], PATH=path)
    return Server("mlflow", cmd, env, folder, port, logs / "mlflow.log", ready_path=MLFLOW_READY)


def measure(
    counts: Counts,
    model: dict[str, Any],
    cauce_ws: Path,
    mlflow: tuple[Path, dict[str, Any], Path] | None,
    logs: Path,
) -> dict[str, Any]:
    """Start every server, then (a) throughput, (c) batching, (b) latency and router overhead.

    (b) runs one loadgen that takes the deployment's own port, the router (split 90/10 to two
    deployments served alone, collector on) and MLflow in turn, one client: the requests of a
    cycle are sent moments apart, so a busy machine slows them alike.
    """
    body = Path(model["body"])
    plain = cauce_server("cauce", ["endpoints", "serve", "bench"], cauce_ws, logs)
    batching = cauce_server("cauce_batching", ["endpoints", "serve", "bench-batch"], cauce_ws, logs)
    blue = cauce_server(
        "deployment_blue", ["deployments", "serve", "bench-split", "blue"], cauce_ws, logs
    )
    green = cauce_server(
        "deployment_green", ["deployments", "serve", "bench-split", "green"], cauce_ws, logs
    )
    router_args = ["endpoints", "serve", "bench-split", "--no-deployments"]
    router_args += [
        "--deployment-url",
        f"blue={blue.base}",
        "--deployment-url",
        f"green={green.base}",
    ]
    router = cauce_server("router", router_args, cauce_ws, logs)
    servers = [plain, batching, blue, green, router]
    peer = mlflow_server(*mlflow, logs) if mlflow is not None else None
    if peer is not None:
        servers.append(peer)
    out: dict[str, Any] = {}
    with serving(servers, counts.startup_timeout_s):
        out["ready_after_s"] = {s.name: s.ready_after_s for s in servers}
        out["answers"] = {s.name: check_scores(s, body.read_bytes()) for s in servers}

        tput = [
            Turn("cauce", [_url(plain)], [plain]),
            Turn("cauce_batching", [_url(batching)], [batching]),
        ]
        if peer is not None:
            tput.append(Turn("mlflow", [_url(peer)], [peer]))
        take_turns(
            "throughput", tput, body, counts.throughput_clients, counts.throughput_requests, counts
        )
        out["throughput"] = {t.name: summarize(t.results) for t in tput}

        batch = [Turn(t.name, t.urls, t.servers) for t in tput[:2]]
        take_turns(
            "batching", batch, body, counts.batching_clients, counts.batching_requests, counts
        )
        out["batching"] = {t.name: summarize(t.results) for t in batch}

        # The router's background work (health checks, store polling) while it routes nothing.
        idle_from, idle_s = router.cpu_s(), 5.0 if counts.rounds > 1 else 1.0
        time.sleep(idle_s)
        out["router_idle_cores"] = (router.cpu_s() - idle_from) / idle_s
        names = ["direct", "router"] + (["mlflow"] if peer is not None else [])
        urls = [_url(blue), _url(router)] + ([_url(peer)] if peer is not None else [])
        latency = Turn("latency", urls, [blue, green, router])
        take_turns(
            "latency (in turn: " + ", ".join(names) + ")",
            [latency],
            body,
            1,
            counts.latency_requests * len(urls),
            counts,
        )
        out["latency"] = {
            name: summarize([r["targets"][i] for r in latency.results], cpu=False)
            for i, name in enumerate(names)
        }
        out["latency_paired_ms"] = {
            name: [r["paired_diff_ms"][i - 1] for r in latency.results]
            for i, name in enumerate(names)
            if i > 0
        }
    # The router process's own CPU time per request it routed (warm-up requests included),
    # less what it spends when idle.
    out["router_cpu_ms_per_request"] = [
        1000
        * (r["server_cpu_s_by_server"]["router"] - out["router_idle_cores"] * r["elapsed_s"])
        / max(r["targets"][1]["answered"] + counts.warmup / len(urls), 1)
        for r in latency.results
    ]
    direct, routed = out["latency"]["direct"], out["latency"]["router"]
    out["router_overhead_per_round_ms"] = [
        r["latency_ms"]["p50"] - d["latency_ms"]["p50"]
        for d, r in zip(direct["rounds"], routed["rounds"], strict=True)
        if r["latency_ms"]["p50"] is not None and d["latency_ms"]["p50"] is not None
    ]
    return out


def _url(server: Server) -> str:
    return server.base + "/invocations"


# -- the report -----------------------------------------------------------------------------


def build_rows(results: dict[str, Any], counts: Counts) -> list[dict[str, Any]]:
    """One row per figure: the two sides' values, the ratio or difference, target, verdict."""
    rows: list[dict[str, Any]] = []
    tput = results.get("throughput")
    if tput:
        mlflow_rps = tput["mlflow"]["throughput_rps"] if "mlflow" in tput else None
        c = counts.throughput_clients
        for name, label, key in (
            ("cauce", f"throughput, {c} clients, W={WORKERS} (batching off)", "throughput"),
            ("cauce_batching", f"throughput, {c} clients, W={WORKERS} (batching on)", None),
        ):
            rps = tput[name]["throughput_rps"]
            ratio = rps / mlflow_rps if mlflow_rps else None
            rows.append(
                _row(
                    key or "throughput_batching",
                    label,
                    f"{rps:.1f} req/s{_failed(tput[name])}",
                    f"{mlflow_rps:.1f} req/s{_failed(tput['mlflow'])}" if mlflow_rps else "-",
                    _fmt_x(ratio),
                    key,
                    ratio,
                )
            )
        if "mlflow" in tput:
            mine = tput["cauce"]["server_cpu_ms_per_request"]
            peer = tput["mlflow"]["server_cpu_ms_per_request"]
            rows.append(
                _row(
                    "cpu_per_request",
                    f"server CPU per request, {c} clients (batching off)",
                    _fmt_ms(mine),
                    _fmt_ms(peer),
                    _fmt_x(peer / mine if mine else None) + " less",
                    None,
                    None,
                )
            )
    lat = results.get("latency")
    if lat:
        direct = lat["direct"]["p50_ms"]
        routed = lat["router"]["p50_ms"]
        per_round = results["router_overhead_per_round_ms"]
        overhead = statistics.median(per_round) if per_round else None
        rows.append(
            _row(
                "router_overhead",
                "router overhead at p50, 1 client (split 90/10 + collector)",
                f"router {_fmt_ms(routed)}",
                f"direct {_fmt_ms(direct)}",
                "-" if overhead is None else f"{overhead:+.2f} ms",
                "router_overhead",
                overhead,
            )
        )
        if "mlflow" in lat:
            peer = lat["mlflow"]["p50_ms"]
            rows.append(
                _row(
                    "latency",
                    "latency p50, 1 client (Cauce through the router)",
                    _fmt_ms(routed),
                    _fmt_ms(peer),
                    _fmt_x(peer / routed if peer and routed else None) + " faster",
                    None,
                    None,
                )
            )
    batching = results.get("batching")
    if batching:
        on = batching["cauce_batching"]["throughput_rps"]
        off = batching["cauce"]["throughput_rps"]
        ratio = on / off if off else None
        rows.append(
            _row(
                "batching",
                f"batching on vs off, {counts.batching_clients} clients",
                f"on {on:.1f} req/s{_failed(batching['cauce_batching'])}",
                f"off {off:.1f} req/s{_failed(batching['cauce'])}",
                _fmt_x(ratio),
                "batching",
                ratio,
            )
        )
    return rows


def _failed(side: dict[str, Any]) -> str:
    """A note for a side that had failed requests (non-2xx answers or transport errors)."""
    return f" ({side['failed']} failed)" if side["failed"] else ""


def _row(
    key: str,
    label: str,
    cauce: str,
    other: str,
    figure_text: str,
    target: str | None,
    figure: float | None,
) -> dict[str, Any]:
    goal = TARGETS.get(target) if target else None
    return {
        "measurement": key,
        "label": label,
        "cauce": cauce,
        "other": other,
        "figure_text": figure_text,
        "figure": figure,
        "target": goal.describe() if goal else None,
        "passed": goal.met(figure) if goal else None,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as a plain-text table."""
    header = [
        "measurement",
        "Cauce",
        "MLflow / baseline",
        "Cauce/MLflow or diff",
        "target",
        "result",
    ]
    lines = [header]
    for r in rows:
        verdict = {True: "PASS", False: "FAIL", None: "n/a" if r["target"] else "-"}[r["passed"]]
        lines.append(
            [r["label"], r["cauce"], r["other"], r["figure_text"], r["target"] or "-", verdict]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(text)


def format_details(results: dict[str, Any]) -> str:
    """Per side: throughput, percentiles and failures (medians over rounds), and each round."""
    lines = []
    for what in ("throughput", "batching"):
        for name, side in (results.get(what) or {}).items():
            lines.append(
                f"{what} {name}: {side['throughput_rps']:.1f} req/s, "
                f"p50 {_fmt_ms(side['p50_ms'])}, p90 {_fmt_ms(side['p90_ms'])}, "
                f"p99 {_fmt_ms(side['p99_ms'])}, "
                f"failed {side['failed']}/{side['requests']}; rounds: "
                + " ".join(f"{r['throughput_rps']:.1f}" for r in side["rounds"])
            )
    tput = results.get("throughput") or {}
    if "mlflow" in tput and "cauce" in tput:
        pairs = zip(tput["cauce"]["rounds"], tput["mlflow"]["rounds"], strict=True)
        lines.append(
            "throughput Cauce (batching off)/MLflow in each round: "
            + " ".join(
                _fmt_x(c["throughput_rps"] / m["throughput_rps"] if m["throughput_rps"] else None)
                for c, m in pairs
            )
        )
    if results.get("latency"):
        for name, side in results["latency"].items():
            lines.append(
                f"latency {name}: p50 {_fmt_ms(side['p50_ms'])}, p90 {_fmt_ms(side['p90_ms'])}, "
                f"p99 {_fmt_ms(side['p99_ms'])}, failed {side['failed']}/{side['requests']}; "
                "p50 per round: "
                + " ".join(_fmt_ms(r["latency_ms"]["p50"]) for r in side["rounds"])
            )
        lines.append(
            "router overhead (p50 router - p50 direct) per round: "
            + " ".join(f"{x:+.2f} ms" for x in results["router_overhead_per_round_ms"])
        )
        lines.append(
            "router process CPU time per routed request (less its idle "
            f"{results['router_idle_cores'] * 1000:.1f} ms/s), per round: "
            + " ".join(f"{x:.2f} ms" for x in results["router_cpu_ms_per_request"])
        )
        for name, rounds in results["latency_paired_ms"].items():
            lines.append(
                f"{name} - direct, same cycle, median of the pairs per round: "
                + " ".join("-" if r["p50"] is None else f"{r['p50']:+.2f} ms" for r in rounds)
            )
    for what in ("throughput", "batching"):
        sides = results.get(what) or {}
        if sides:
            lines.append(
                f"{what}: server CPU time per answered request and cores in use (medians): "
                + ", ".join(
                    f"{name} {side['server_cpu_ms_per_request']:.2f} ms, "
                    f"{side['server_cores']:.2f} cores"
                    for name, side in sides.items()
                )
            )
    return "\n".join(lines)


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _fmt_x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Cauce serving vs mlflow models serve: throughput, router overhead, batching.",
        epilog="Example: python benchmarks/serving_vs_mlflow.py --json .bench/serving.json",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--cauce-only", action="store_true", help="skip MLflow entirely")
    side.add_argument(
        "--mlflow-only", action="store_true", help="only MLflow's throughput (checks the peer side)"
    )
    parser.add_argument(
        "--mlflow-python", type=Path, help="use this interpreter (with mlflow) instead of the venv"
    )
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help=f"MLflow venv (default {DEFAULT_VENV})"
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--rows-per-request", type=int, default=1, help="rows in each request")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: exit 0)"
    )
    args = parser.parse_args(argv)
    if args.rows_per_request < 1 or (args.rounds is not None and args.rounds < 1):
        parser.error("--rows-per-request and --rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Set both sides up, take the turns, print the table, write the JSON; the exit status."""
    args = parse_args(argv)
    counts = QUICK if args.quick else FULL
    if args.rounds:
        counts = Counts(**{**asdict(counts), "rounds": args.rounds})
    load_before = load_average()
    if load_before is not None and load_before > 0.5 * (os.cpu_count() or 1):
        note(f"load average is {load_before:.2f}: other processes will add noise to the figures")
    model = ensure_model(DATA_DIR, args.seed, args.rows_per_request)
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "quick": args.quick,
        "machine": machine(),
        "counts_per_round": asdict(counts),
        "workers": WORKERS,
        "model": model,
    }
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        folder = Path(tmp)
        logs = folder / "logs"
        logs.mkdir()
        mlflow = None
        if not args.cauce_only:
            python = args.mlflow_python or ensure_mlflow_venv(args.venv)
            logged = log_model(python, "mlflow", model, folder / "mlflow")
            results["mlflow_version"] = logged["version"]
            mlflow = (python, logged, folder / "mlflow")
        if args.mlflow_only:
            assert mlflow is not None
            server = mlflow_server(*mlflow, logs)
            body = Path(model["body"])
            with serving([server], counts.startup_timeout_s):
                results["answers"] = {"mlflow": check_scores(server, body.read_bytes())}
                turn = Turn("mlflow", [_url(server)], [server])
                clients, requests = counts.throughput_clients, counts.throughput_requests
                take_turns("throughput", [turn], body, clients, requests, counts)
                results["throughput"] = {"mlflow": summarize(turn.results)}
        else:
            cauce_ws = folder / "cauce"
            try:  # a failure is reported with what was measured (exit status 2)
                logged_cauce = setup_cauce(model, cauce_ws)
                results["cauce_version"] = logged_cauce["version"]
                results["cauce_spec"] = logged_cauce["spec"]
                results.update(measure(counts, model, cauce_ws, mlflow, logs))
            except SystemExit as exc:
                failures["measurements"] = str(exc)
    results["load_average_1min"] = {"before": load_before, "after": load_average()}
    rows = build_rows(results, counts) if not args.mlflow_only else []
    results["rows"] = rows

    print(
        f"Cauce {results.get('cauce_version', '-')} vs "
        f"MLflow {results.get('mlflow_version', 'skipped')}; "
        f"medians over {counts.rounds} round(s); {results['machine']['cpu_count']} CPUs, Python "
        f"{results['machine']['python']}; model: {model['model_bytes'] / 1e6:.1f} MB pickle, "
        f"{model['rows_per_request']} row(s) per request"
    )
    if args.quick:
        print("(--quick: counts too small for the verdicts to mean anything)")
    if rows:
        print(format_table(rows))
    print(format_details(results))
    answers = {n: a["predictions"] for n, a in results.get("answers", {}).items()}
    same = len({json.dumps(v) for v in answers.values()}) <= 1
    print(f"answers to the same request ({'same' if same else 'DIFFERENT'}): {json.dumps(answers)}")
    failed = [
        f"{what}/{name}"
        for what, sides in (
            ("throughput", results.get("throughput")),
            ("batching", results.get("batching")),
            ("latency", results.get("latency")),
        )
        for name, side in (sides or {}).items()
        if side["failed"]
    ]
    if failed:
        print(f"WARNING: failed requests in {', '.join(failed)} (see the JSON)")
    results["failures"] = failures
    for what, message in failures.items():
        print(f"FAILED: {what}: {message}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"results written to {args.json}")
    if failures or not same:
        return 2
    missed = [r["label"] for r in rows if r["passed"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
