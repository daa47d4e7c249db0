"""``cauce server`` against ``mlflow server``: the same calls, the same backend, in one run.

Issue 13, item 5. Both servers run on loopback on the same machine, with the same number of
worker processes, over the same kind of database: a fresh SQLite file each, then a fresh
PostgreSQL database each (created on 127.0.0.1:5432 as user ``postgres`` and dropped at the
end). MLflow runs in its own venv (``.bench/mlflow-server-venv``, the full ``mlflow`` package,
which has ``mlflow server``); Cauce with the interpreter that runs this script. The clients are
``server_worker.py`` processes, one per side, kept alive for the whole run and driven by JSON
lines, so that the sides can take turns (the order rotating every round) and a busy neighbour
slows them alike.

Measurements, per backend:

1. **SDK log_metric**: Cauce's ``cauce.log_metric`` with ``CAUCE_SERVER_URL`` (through ``cauce
   server``) vs MLflow's ``mlflow.log_metric`` with ``MLFLOW_TRACKING_URI`` (through ``mlflow
   server``): sequential calls from one client into one active run, per-call p50 and mean after a
   warm-up. Target: Cauce >= 3x faster.
2. **MLflow client, both servers**: the same MLflow client process kind (the peer venv) against
   ``cauce server`` and against ``mlflow server``: ``log_metric``, ``log_param``, ``set_tag``,
   ``get_run``. Target: >= 2x faster against Cauce (each call).
3. **search_runs** with a filter and an order (``metrics.auc > 0.5 and params.model = 'rf'``,
   ``metrics.auc DESC``, 100 results) as the experiment grows to 100,000 runs (Cauce) and to a
   smaller size (MLflow, whose time grows linearly). Runs are written in bulk into each server's
   database (not timed: neither has a bulk API), then PostgreSQL's statistics are refreshed
   (``ANALYZE``, on both databases), as autovacuum does on a live server after such a load.
   **Server time** is measured two ways: the
   request's round trip minus that of ``GET /health`` on the same connection, the two
   alternating (both servers), and, for Cauce, ``search_runs`` timed in a separate process on
   the server's database (the function the route runs, without HTTP). Target: <= 50 ms at
   100,000 runs.
4. **Concurrency**: 16 client processes, each logging 1,000 metrics one call at a time through
   ``cauce server``, all released at once; then the rows are counted in the database (and the
   distinct steps, so that a duplicate would show too). Target: zero errors, zero lost.

Example::

    python benchmarks/server_vs_mlflow.py --json .bench/server.json
    python benchmarks/server_vs_mlflow.py --quick --cauce-only     # smoke test, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note
from servers import Server, free_port, serving

MLFLOW_VERSION = "3.17.2"  # 3.18.0's mlflow-tracing is not on the index here
REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
WORKER = HERE / "server_worker.py"
DEFAULT_VENV = REPO / ".bench" / "mlflow-server-venv"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKERS = 2
TARGETS = {"sdk": 3.0, "mlflow_client": 2.0, "search_ms": 50.0}


@dataclass(frozen=True)
class Counts:
    """How much each measurement does."""

    rounds: int
    calls: int  # per side per round, after the warm-up
    warmup: int
    search_sizes: tuple[int, ...]  # Cauce
    mlflow_search_sizes: tuple[int, ...]
    search_calls: int
    clients: int
    client_metrics: int


FULL = Counts(3, 300, 30, (1_000, 5_000, 20_000, 100_000), (1_000, 5_000, 10_000), 15, 16, 1000)
QUICK = Counts(1, 20, 3, (500,), (500,), 3, 4, 50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke test)")
    parser.add_argument("--cauce-only", action="store_true", help="no MLflow, no venv")
    parser.add_argument("--backends", default=None, help="sqlite,postgres (default: both)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--mlflow-python", type=Path, help="an interpreter that has mlflow")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
    backends = (args.backends or ("sqlite" if args.quick else "sqlite,postgres")).split(",")
    if "postgres" in backends and not postgres_reachable():
        note("PostgreSQL is not reachable on 127.0.0.1:5432: skipping it")
        backends = [b for b in backends if b != "postgres"]

    mlflow_python: Path | None = None
    if not args.cauce_only:
        mlflow_python = args.mlflow_python or ensure_venv(
            args.venv,
            [f"mlflow=={MLFLOW_VERSION}", "psycopg2-binary"],
            f"import mlflow, psycopg2; assert mlflow.__version__ == {MLFLOW_VERSION!r}",
        )
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(load_before=load_average()),
        "counts": counts.__dict__,
        "mlflow_version": None,
        "backends": {},
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="cauce-server-bench-") as tmp:
        for backend in backends:
            note(f"backend {backend}")
            with Bench(Path(tmp) / backend, backend, counts, mlflow_python) as bench:
                results["backends"][backend] = bench.run()
                results["mlflow_version"] = bench.mlflow_version or results["mlflow_version"]
                failed |= bench.failed
    results["machine"]["load_after"] = load_average()
    missed = report(results, counts)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if failed:
        return 2
    return 1 if (args.strict and missed) else 0


# -- one backend ----------------------------------------------------------------------------------


class Bench:
    """Both servers over one backend kind, their clients, and the measurements."""

    def __init__(self, folder: Path, backend: str, counts: Counts, mlflow_python: Path | None):
        self.folder = folder
        self.backend = backend
        self.counts = counts
        self.mlflow_python = mlflow_python
        self.mlflow_version: str | None = None
        self.failed = False
        self.stack = contextlib.ExitStack()
        self.databases: list[str] = []

    def __enter__(self) -> Bench:
        self.folder.mkdir(parents=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stack.close()
        finally:
            for name in self.databases:
                drop_database(name)

    # set-up

    def db_url(self, side: str) -> str:
        """A fresh database for ``side``, as its server's URL wants it."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.folder / side / 'store.db'}"
        name = f"bench_{side}_{uuid.uuid4().hex[:8]}"
        create_database(name)
        self.databases.append(name)
        driver = "postgresql+psycopg" if side == "cauce" else "postgresql+psycopg2"
        return f"{driver}://postgres@127.0.0.1:5432/{name}"

    def start_servers(self) -> None:
        home = self.folder / "cauce"
        home.mkdir(parents=True)
        self.cauce_home = home
        self.cauce_db = self.db_url("cauce")
        self.cauce_env = clean_env(CAUCE_HOME=str(home), CAUCE_USER="bench")
        if self.backend != "sqlite":
            self.cauce_env["CAUCE_DB_URL"] = self.cauce_db
        src = str(REPO / "src")
        self.cauce_env["PYTHONPATH"] = src + os.pathsep + self.cauce_env.get("PYTHONPATH", "")
        servers = [
            Server(
                "cauce server",
                [
                    sys.executable,
                    "-m",
                    "cauce.cli.main",
                    "server",
                    "--port",
                    str(free_port()),
                    "--workers",
                    str(WORKERS),
                ],
                self.cauce_env,
                home,
                0,
                self.folder / "cauce-server.log",
                "/health",
            )
        ]
        servers[0].port = int(servers[0].cmd[5])
        if self.mlflow_python is not None:
            (self.folder / "mlflow").mkdir(parents=True, exist_ok=True)
            self.mlflow_db = self.db_url("mlflow")
            port = free_port()
            servers.append(
                Server(
                    "mlflow server",
                    [
                        str(self.mlflow_python),
                        "-m",
                        "mlflow",
                        "server",
                        "--backend-store-uri",
                        self.mlflow_db,
                        "--default-artifact-root",
                        str(self.folder / "mlflow" / "artifacts"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--workers",
                        str(WORKERS),
                    ],
                    clean_env(MLFLOW_DISABLE_TELEMETRY="true"),
                    self.folder / "mlflow",
                    port,
                    self.folder / "mlflow-server.log",
                    "/health",
                )
            )
        self.servers = self.stack.enter_context(serving(servers, timeout=180))
        self.cauce_server = servers[0]
        self.mlflow_server = servers[1] if len(servers) > 1 else None

    def worker(self, kind: str, env: dict[str, str], python: Path | str, *extra: str) -> Worker:
        w = Worker(kind, [str(python), str(WORKER), "--kind", kind, *extra], env)
        self.stack.callback(w.close)
        return w

    # the run

    def run(self) -> dict[str, Any]:
        self.start_servers()
        out: dict[str, Any] = {"load_before": load_average()}
        cauce_url = self.cauce_server.base
        clients: dict[str, Worker] = {
            "cauce_sdk": self.worker(
                "cauce",
                {**self.cauce_env, "CAUCE_SERVER_URL": cauce_url},
                sys.executable,
                "--url",
                cauce_url,
            )
        }
        if self.mlflow_server is not None:
            for name, url in (
                ("mlflow_on_mlflow", self.mlflow_server.base),
                ("mlflow_on_cauce", cauce_url),
            ):
                env = clean_env(MLFLOW_TRACKING_URI=url, MLFLOW_DISABLE_TELEMETRY="true")
                clients[name] = self.worker("mlflow", env, str(self.mlflow_python), "--url", url)
        for name, w in clients.items():
            answer = w.ask(cmd="setup", experiment="calls")
            if name.startswith("mlflow"):
                self.mlflow_version = answer["version"]
        out["calls"] = self.calls(clients)
        out["search"] = self.search(clients)
        out["concurrent"] = self.concurrent()
        out["server_cpu_s"] = {s.name: s.cpu_s() for s in self.servers}
        out["load_after"] = load_average()
        return out

    def calls(self, clients: dict[str, Worker]) -> dict[str, Any]:
        """Sequential calls, the clients in turns, the order rotating each round."""
        c = self.counts
        plan = [("cauce_sdk", "log_metric")]
        if "mlflow_on_mlflow" in clients:
            plan = [
                ("cauce_sdk", "log_metric"),
                ("mlflow_on_mlflow", "log_metric"),
                ("mlflow_on_cauce", "log_metric"),
            ]
        extra_ops = ("log_param", "set_tag", "get_run")
        samples: dict[str, list[float]] = {}
        for r in range(c.rounds):
            note(f"{self.backend}: calls, round {r + 1}/{c.rounds}")
            turn = plan[r % len(plan) :] + plan[: r % len(plan)]
            for op in extra_ops:
                sides = [
                    "cauce_sdk",
                    *(n for n in ("mlflow_on_mlflow", "mlflow_on_cauce") if n in clients),
                ]
                sides = sides[r % len(sides) :] + sides[: r % len(sides)]
                turn += [(side, op) for side in sides]
            for side, op in turn:
                got = clients[side].ask(cmd="time", op=op, n=c.calls, warmup=c.warmup)
                samples.setdefault(f"{side}.{op}", []).extend(got["samples"])
                samples.setdefault(f"{side}.{op}.round{r}", []).append(
                    statistics.median(got["samples"])
                )
        return {key: summary(v) if "round" not in key else v for key, v in samples.items()}

    def search(self, clients: dict[str, Worker]) -> dict[str, Any]:
        """search_runs as each experiment grows; server time by subtraction and in-process."""
        c = self.counts
        local = self.worker("cauce-local", self.cauce_env, sys.executable)
        out: dict[str, Any] = {"cauce": {}, "mlflow": {}}
        for size in c.search_sizes:
            filled = local.ask(cmd="populate", experiment="search", total=size)
            note(
                f"{self.backend}: Cauce holds {size:,} runs (+{filled['added']:,} in "
                f"{filled['seconds']:.1f} s)"
            )
            http = clients["cauce_sdk"].ask(
                cmd="search_http",
                experiment_id=filled["experiment_id"],
                n=c.search_calls,
                warmup=2,
            )
            answer = http.pop("answer")
            if isinstance(answer, dict) and "items" in answer:  # a list comes a page at a time
                answer = answer["items"]
            sdk = clients["cauce_sdk"].ask(cmd="search_sdk", n=c.search_calls, warmup=1)
            inproc = local.ask(cmd="search", experiment="search", n=c.search_calls, warmup=1)
            out["cauce"][size] = search_summary(http) | {
                "found": len(answer) if isinstance(answer, list) else answer,
                "sdk_round_trip": summary(sdk["samples"]),
                "in_process": summary(inproc["samples"]),
                "in_process_found": inproc["found"],
            }
        if "mlflow_on_mlflow" in clients:
            mlflow = clients["mlflow_on_mlflow"]
            exp_id = mlflow.ask(cmd="experiment_id", name="search")["experiment_id"]
            sql = self.worker(
                "mlflow-sql", clean_env(), str(self.mlflow_python), "--db", self.mlflow_db
            )
            for size in c.mlflow_search_sizes:
                filled = sql.ask(cmd="populate", experiment_id=exp_id, total=size)
                note(
                    f"{self.backend}: MLflow holds {size:,} runs (+{filled['added']:,} in "
                    f"{filled['seconds']:.1f} s)"
                )
                http = mlflow.ask(
                    cmd="search_http", experiment_id=exp_id, n=max(3, c.search_calls // 3), warmup=1
                )
                client = mlflow.ask(
                    cmd="search_client",
                    experiment_id=exp_id,
                    n=max(3, c.search_calls // 3),
                    warmup=0,
                )
                out["mlflow"][size] = search_summary(http) | {
                    "found": http["found"],
                    "client_round_trip": summary(client["samples"]),
                }
        return out

    def concurrent(self) -> dict[str, Any]:
        """``clients`` processes released at once, each logging ``client_metrics`` values."""
        c = self.counts
        env = {**self.cauce_env, "CAUCE_SERVER_URL": self.cauce_server.base}
        cmd = [
            sys.executable,
            str(WORKER),
            "--kind",
            "concurrent",
            "--metrics",
            str(c.client_metrics),
        ]
        note(f"{self.backend}: {c.clients} concurrent clients x {c.client_metrics} metrics")
        procs = [
            subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(c.clients)
        ]
        try:
            run_ids = [json.loads(p.stdout.readline())["ready"] for p in procs]  # type: ignore[union-attr]
            cpu_before = self.cauce_server.cpu_s()
            t0 = time.perf_counter()
            for p in procs:
                p.stdin.write("go\n")  # type: ignore[union-attr]
                p.stdin.flush()  # type: ignore[union-attr]
            done = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
            wall = time.perf_counter() - t0
            cpu = self.cauce_server.cpu_s() - cpu_before
        finally:
            for p in procs:
                with contextlib.suppress(Exception):
                    p.stdin.close()  # type: ignore[union-attr]
                p.wait(timeout=60)
        local = self.worker("cauce-local", self.cauce_env, sys.executable)
        rows = local.ask(cmd="count", run_ids=run_ids)["rows"]
        expected = c.clients * c.client_metrics
        stored = sum(rows.get(r, [0, 0])[0] for r in run_ids)
        distinct = sum(rows.get(r, [0, 0])[1] for r in run_ids)
        errors = sum(d["errors"] for d in done)
        if errors or stored != expected or distinct != expected:
            self.failed = True
        return {
            "clients": c.clients,
            "per_client": c.client_metrics,
            "expected": expected,
            "stored": stored,
            "distinct_steps": distinct,
            "errors": errors,
            "first_errors": [e for d in done for e in d["first"]][:5],
            "wall_s": wall,
            "calls_per_s": expected / wall,
            "client_s": sorted(d["s"] for d in done),
            "server_cpu_s": cpu,
        }


class Worker:
    """A ``server_worker.py`` process driven by JSON lines."""

    def __init__(self, kind: str, cmd: list[str], env: dict[str, str]):
        self.kind = kind
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.kind} died answering {command.get('cmd')}")
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# -- helpers --------------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CAUCE_* and MLFLOW_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUCE_", "MLFLOW_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def summary(samples: list[float]) -> dict[str, Any]:
    """p50, mean, p99 and the count of per-call seconds."""
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "mean": statistics.fmean(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def search_summary(http: dict[str, Any]) -> dict[str, Any]:
    """The request's round trip, the trivial one's, and their difference (the server time)."""
    request = summary(http["samples"])
    trivial = summary(http["trivial"])
    return {
        "round_trip": request,
        "trivial": trivial,
        "server_p50": request["p50"] - trivial["p50"],
        "bytes": http["bytes"],
    }


def postgres_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except Exception:
        return False
    return True


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    note(f"dropped database {name}")


# -- the report -----------------------------------------------------------------------------------


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} us"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def report(results: dict[str, Any], counts: Counts) -> list[str]:
    """Print the tables; the targets missed."""
    missed: list[str] = []
    m = results["machine"]
    print(
        f"cauce server vs mlflow server ({results['mlflow_version'] or 'not run'}); "
        f"{m['cpu_count']} CPUs, Python {m['python']}; {WORKERS} workers each; "
        f"load {m['load_before']:.2f} -> {m['load_after']:.2f}"
    )
    results["rows"] = []
    for backend, b in results["backends"].items():
        calls = b["calls"]
        rows = []

        def pair(
            label: str,
            fast: str,
            slow: str,
            target: float | None,
            row_name: str,
            calls: dict[str, Any] = calls,
            backend: str = backend,
            rows: list[list[str]] = rows,
        ) -> None:
            f, s = calls.get(fast), calls.get(slow)
            ratio_p50 = s["p50"] / f["p50"] if f and s else None
            ratio_mean = s["mean"] / f["mean"] if f and s else None
            rounds = ""
            if f and s:
                per = [
                    calls[f"{slow}.round{r}"][0] / calls[f"{fast}.round{r}"][0]
                    for r in range(counts.rounds)
                    if f"{slow}.round{r}" in calls and f"{fast}.round{r}" in calls
                ]
                rounds = " ".join(f"{x:.1f}" for x in per)
            verdict = "-"
            if target is not None and ratio_p50 is not None:
                ok = ratio_p50 >= target and ratio_mean is not None and ratio_mean >= target
                verdict = "PASS" if ok else "MISS"
                if not ok:
                    missed.append(f"{backend} {label}")
            rows.append(
                [
                    label,
                    fmt(f["p50"]) if f else "-",
                    fmt(f["mean"]) if f else "-",
                    fmt(s["p50"]) if s else "-",
                    fmt(s["mean"]) if s else "-",
                    f"{ratio_p50:.1f}x" if ratio_p50 else "-",
                    f"{ratio_mean:.1f}x" if ratio_mean else "-",
                    f">= {target:g}x" if target else "-",
                    verdict,
                    rounds,
                ]
            )
            results["rows"].append(
                {
                    "backend": backend,
                    "measurement": row_name,
                    "ratio_p50": ratio_p50,
                    "ratio_mean": ratio_mean,
                    "target": target,
                    "result": verdict,
                }
            )

        pair(
            "SDK log_metric: Cauce SDK->cauce vs MLflow->mlflow",
            "cauce_sdk.log_metric",
            "mlflow_on_mlflow.log_metric",
            TARGETS["sdk"],
            "sdk_log_metric",
        )
        for op in ("log_metric", "log_param", "set_tag", "get_run"):
            pair(
                f"MLflow client {op}: ->cauce vs ->mlflow",
                f"mlflow_on_cauce.{op}",
                f"mlflow_on_mlflow.{op}",
                TARGETS["mlflow_client"],
                f"mlflow_client_{op}",
            )
        for op in ("log_param", "set_tag", "get_run"):
            pair(
                f"(info) Cauce SDK {op} vs MLflow->mlflow",
                f"cauce_sdk.{op}",
                f"mlflow_on_mlflow.{op}",
                None,
                f"sdk_{op}",
            )
        print(
            f"\n[{backend}] sequential calls, one client, {counts.calls} calls x "
            f"{counts.rounds} round(s) per side after {counts.warmup} warm-up calls"
        )
        print(
            table(
                [
                    "call",
                    "fast p50",
                    "fast mean",
                    "slow p50",
                    "slow mean",
                    "ratio p50",
                    "ratio mean",
                    "target",
                    "result",
                    "ratio p50 per round",
                ],
                rows,
            )
        )

        s = b["search"]
        srows = []
        for side in ("cauce", "mlflow"):
            for size, r in s[side].items():
                inproc = r.get("in_process")
                srows.append(
                    [
                        side,
                        f"{int(size):,}",
                        fmt(r["round_trip"]["p50"]),
                        fmt(r["trivial"]["p50"]),
                        fmt(r["server_p50"]),
                        fmt(inproc["p50"]) if inproc else "-",
                        fmt((r.get("sdk_round_trip") or r.get("client_round_trip"))["p50"]),
                        str(
                            r.get("in_process_found", r["found"]) if side == "cauce" else r["found"]
                        ),
                    ]
                )
        print(f'\n[{backend}] search_runs "{SEARCH_DESC}", p50 of {counts.search_calls} calls')
        print(
            table(
                [
                    "side",
                    "runs",
                    "HTTP round trip",
                    "GET /health",
                    "server (difference)",
                    "server fn in-process",
                    "client round trip",
                    "found",
                ],
                srows,
            )
        )
        biggest = max(s["cauce"], key=int) if s["cauce"] else None
        if biggest is not None:
            r = s["cauce"][biggest]
            server_ms = r["server_p50"] * 1e3
            ok = server_ms <= TARGETS["search_ms"]
            verdict = "PASS" if ok else "MISS"
            if not ok:
                missed.append(f"{backend} search_runs")
            print(
                f"search_runs server time at {int(biggest):,} runs: {server_ms:.1f} ms "
                f"(in-process {r['in_process']['p50'] * 1e3:.1f} ms); target <= "
                f"{TARGETS['search_ms']:g} ms: {verdict}"
            )
            results["rows"].append(
                {
                    "backend": backend,
                    "measurement": "search_runs",
                    "runs": int(biggest),
                    "server_ms": server_ms,
                    "target": TARGETS["search_ms"],
                    "result": verdict,
                }
            )

        cc = b["concurrent"]
        ok = cc["errors"] == 0 and cc["stored"] == cc["expected"] == cc["distinct_steps"]
        if not ok:
            missed.append(f"{backend} concurrent")
        print(
            f"\n[{backend}] concurrent: {cc['clients']} clients x {cc['per_client']} log_metric: "
            f"errors {cc['errors']}, stored {cc['stored']:,} of {cc['expected']:,} "
            f"(distinct steps {cc['distinct_steps']:,}); {cc['wall_s']:.1f} s, "
            f"{cc['calls_per_s']:.0f} calls/s, server CPU {cc['server_cpu_s']:.1f} s: "
            f"{'PASS' if ok else 'FAIL'}"
        )
        results["rows"].append(
            {"backend": backend, "measurement": "concurrent", "result": "PASS" if ok else "FAIL"}
        )
        print(
            f"[{backend}] load {b['load_before']:.2f} -> {b['load_after']:.2f}; server CPU "
            + ", ".join(f"{k} {v:.1f} s" for k, v in b["server_cpu_s"].items())
        )
    print("\ntargets missed: " + (", ".join(missed) if missed else "none"))
    return missed


SEARCH_DESC = "metrics.auc > 0.5 and params.model = 'rf' order by metrics.auc DESC, 100 results"


if __name__ == "__main__":
    sys.exit(main())
