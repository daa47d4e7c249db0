"""Receiving OpenTelemetry traces: ``cauce server`` against ``mlflow server``, the same OTLP
requests, in one run.

Both servers run on loopback with the same number of worker processes, each over a fresh SQLite
file (then, with ``--backends sqlite,postgres``, a fresh PostgreSQL database each). MLflow runs
from its own venv (``.bench/mlflow-server-venv``, as ``server_vs_mlflow.py`` makes it); MLflow
3.6 and later take OTLP at ``/v1/traces``, the experiment named in ``x-mlflow-experiment-id``.

The requests are made here once, before anything is timed, and sent as they are to both sides:
OTLP/HTTP protobuf bodies, each the spans of whole traces of a retrieval-augmented answer (an
agent span, a retrieval with its documents, a chat call with GenAI attributes, token usage and
about 1 KB of messages), as an application's batch span processor sends them. One client (this
script, with ``httpx``: neither side's library) sends them one request at a time, the sides
taking turns by round, the order rotating; then ``--clients`` senders at once. Afterwards every
span sent is counted in each server's database: a side that lost spans fails the run.

Measured: spans stored per second (wall time of the whole send, sequential and concurrent), and
each request's round trip (p50, p99). No target is set by an issue; the figures say where Cauce
stands against the peer that receives OTLP into the same kind of store.

Example::

    python benchmarks/traces_vs_mlflow.py --json .bench/traces.json
    python benchmarks/traces_vs_mlflow.py --quick --cauce-only     # smoke test, seconds
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note
from server_vs_mlflow import clean_env, create_database, drop_database, summary
from servers import Server, free_port, serving

MLFLOW_VERSION = "3.17.2"  # as server_vs_mlflow.py: 3.18.0's mlflow-tracing is not on the index
REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".bench" / "mlflow-server-venv"
WORKERS = 2
SPANS_PER_TRACE = 3


@dataclass(frozen=True)
class Counts:
    """How much each measurement sends."""

    rounds: int
    requests: int  # per side per round, one at a time
    traces_per_request: int
    concurrent_requests: int  # per side, spread over the clients
    clients: int


FULL = Counts(rounds=3, requests=100, traces_per_request=20, concurrent_requests=200, clients=4)
QUICK = Counts(rounds=1, requests=5, traces_per_request=5, concurrent_requests=8, clients=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke test)")
    parser.add_argument("--cauce-only", action="store_true", help="no MLflow, no venv")
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgres (default: sqlite)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--mlflow-python", type=Path, help="an interpreter that has mlflow")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
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
        "backends": {},
    }
    lost = False
    with tempfile.TemporaryDirectory(prefix="cauce-traces-bench-") as tmp:
        for backend in args.backends.split(","):
            note(f"backend {backend}")
            with Bench(Path(tmp) / backend, backend, counts, mlflow_python) as bench:
                results["backends"][backend] = bench.run()
                lost |= bench.lost
    results["machine"]["load_after"] = load_average()
    report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 2 if lost else 0


# -- the requests ---------------------------------------------------------------------------------


def make_requests(count: int, traces_per_request: int, seed: int) -> list[bytes]:
    """``count`` OTLP protobuf bodies of ``traces_per_request`` whole traces each."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    rng = random.Random(seed)
    now = time.time_ns()

    def attributes(**values: Any) -> list[KeyValue]:
        found = []
        for key, value in values.items():
            kv = KeyValue(key=key.replace("__", "."))
            if isinstance(value, str):
                kv.value.string_value = value
            elif isinstance(value, float):
                kv.value.double_value = value
            else:
                kv.value.int_value = value
            found.append(kv)
        return found

    bodies = []
    for _ in range(count):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(attributes(service__name="support-bot"))
        spans = resource_spans.scope_spans.add().spans
        for _ in range(traces_per_request):
            trace_id = rng.randbytes(16)
            root, retrieval, chat = (rng.randbytes(8) for _ in range(3))
            start = now + rng.randrange(10**12)
            question = " ".join(rng.choice(WORDS) for _ in range(12))
            messages = json.dumps(
                [
                    {"role": "system", "content": "Answer from the documents. " * 8},
                    {"role": "user", "content": question + " " + " ".join(WORDS) * 3},
                ]
            )
            for span_id, parent, name, offset, took, values in (
                (root, b"", "answer", 0, 900, {"session__id": f"s{rng.randrange(500)}"}),
                (
                    retrieval,
                    root,
                    "retrieval docs",
                    1,
                    8,
                    {
                        "gen_ai__operation__name": "retrieval",
                        "gen_ai__data_source__id": "docs@3",
                        "gen_ai__retrieval__query__text": question,
                    },
                ),
                (
                    chat,
                    root,
                    "chat gpt-4o-mini",
                    10,
                    880,
                    {
                        "gen_ai__operation__name": "chat",
                        "gen_ai__provider__name": "openai",
                        "gen_ai__request__model": "gpt-4o-mini",
                        "gen_ai__request__temperature": 0.2,
                        "gen_ai__usage__input_tokens": rng.randrange(200, 900),
                        "gen_ai__usage__output_tokens": rng.randrange(20, 200),
                        "gen_ai__input__messages": messages,
                    },
                ),
            ):
                span = spans.add()
                span.trace_id, span.span_id, span.parent_span_id = trace_id, span_id, parent
                span.name = name
                span.kind = 3 if parent else 2
                span.start_time_unix_nano = start + offset * 1_000_000
                span.end_time_unix_nano = span.start_time_unix_nano + took * 1_000_000
                span.attributes.extend(attributes(**values))
                span.status.code = 1
        bodies.append(request.SerializeToString())
    return bodies


WORDS = [
    "parcel",
    "refund",
    "invoice",
    "delivery",
    "address",
    "account",
    "password",
    "order",
    "return",
    "warranty",
    "courier",
    "tracking",
    "label",
    "customs",
    "payment",
    "card",
    "subscription",
    "cancel",
    "upgrade",
    "support",
]


# -- one backend ----------------------------------------------------------------------------------


class Bench:
    """Both servers over one backend kind, and the sends."""

    def __init__(self, folder: Path, backend: str, counts: Counts, mlflow_python: Path | None):
        self.folder = folder
        self.backend = backend
        self.counts = counts
        self.mlflow_python = mlflow_python
        self.lost = False
        self.stack = contextlib.ExitStack()
        self.databases: list[str] = []
        self.sent = {"cauce": 0, "mlflow": 0}

    def __enter__(self) -> Bench:
        self.folder.mkdir(parents=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stack.close()
        finally:
            for name in self.databases:
                drop_database(name)

    def db_url(self, side: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.folder / side / 'store.db'}"
        name = f"bench_{side}_{uuid.uuid4().hex[:8]}"
        create_database(name)
        self.databases.append(name)
        driver = "postgresql+psycopg" if side == "cauce" else "postgresql+psycopg2"
        return f"{driver}://postgres@127.0.0.1:5432/{name}"

    def start_servers(self) -> dict[str, Server]:
        home = self.folder / "cauce"
        home.mkdir(parents=True)
        env = clean_env(CAUCE_HOME=str(home), CAUCE_USER="bench")
        if self.backend == "sqlite":
            self.cauce_db = f"sqlite:///{home / '.cauce' / 'cauce.db'}"  # the default place
        else:
            self.cauce_db = env["CAUCE_DB_URL"] = self.db_url("cauce")
        env["PYTHONPATH"] = str(REPO / "src")
        port = free_port()
        cmd = [sys.executable, "-m", "cauce.cli.main", "server", "--port", str(port)]
        found = {
            "cauce": Server(
                "cauce server",
                [*cmd, "--workers", str(WORKERS)],
                env,
                home,
                port,
                self.folder / "cauce-server.log",
                "/health",
            )
        }
        if self.mlflow_python is not None:
            (self.folder / "mlflow").mkdir(parents=True)
            self.mlflow_db = self.db_url("mlflow")
            port = free_port()
            found["mlflow"] = Server(
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
        self.stack.enter_context(serving(list(found.values()), timeout=180))
        return found

    def run(self) -> dict[str, Any]:
        import httpx

        servers = self.start_servers()
        sides = list(servers)
        counts = self.counts
        out: dict[str, Any] = {"load_before": load_average(), "sequential": {}, "concurrent": {}}
        headers = {"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": "0"}
        clients = {s: httpx.Client(base_url=servers[s].base, headers=headers) for s in sides}
        for client in clients.values():
            self.stack.callback(client.close)
        # Warm-up: a few requests each (imports, connections, the first transaction).
        for side in sides:
            for body in make_requests(3, 2, seed=7):
                self._send(clients[side], body, side)
        samples: dict[str, list[float]] = {s: [] for s in sides}
        walls: dict[str, float] = dict.fromkeys(sides, 0.0)
        for round_no in range(counts.rounds):
            bodies = make_requests(counts.requests, counts.traces_per_request, seed=round_no)
            order = sides[round_no % len(sides) :] + sides[: round_no % len(sides)]
            for side in order:
                note(f"round {round_no + 1}: {side}, {len(bodies)} requests one at a time")
                started = time.perf_counter()
                for body in bodies:
                    t0 = time.perf_counter()
                    self._send(clients[side], body, side)
                    samples[side].append(time.perf_counter() - t0)
                walls[side] += time.perf_counter() - started
        spans_each = counts.rounds * counts.requests * counts.traces_per_request * SPANS_PER_TRACE
        for side in sides:
            out["sequential"][side] = {
                **summary(samples[side]),
                "spans_per_s": spans_each / walls[side],
            }
        bodies = make_requests(counts.concurrent_requests, counts.traces_per_request, seed=99)
        for side in sides:
            note(f"{side}: {len(bodies)} requests from {counts.clients} clients at once")
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(counts.clients) as pool:
                list(pool.map(lambda body, s=side: self._send(clients[s], body, s), bodies))
            wall = time.perf_counter() - started
            spans = len(bodies) * counts.traces_per_request * SPANS_PER_TRACE
            out["concurrent"][side] = {"spans_per_s": spans / wall, "wall_s": wall}
        for side in sides:
            stored = self._stored(side)
            out.setdefault("stored", {})[side] = {"sent": self.sent[side], "stored": stored}
            if stored != self.sent[side]:
                self.lost = True
                note(f"{side}: {self.sent[side]} spans sent, {stored} stored")
        out["load_after"] = load_average()
        return out

    def _send(self, client: Any, body: bytes, side: str) -> None:
        answer = client.post("/v1/traces", content=body, timeout=120)
        if answer.status_code != 200:
            raise SystemExit(f"{side} answered {answer.status_code}: {answer.text[:500]}")
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest.FromString(body)
        self.sent[side] += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)

    def _stored(self, side: str) -> int:
        url = self.cauce_db if side == "cauce" else self.mlflow_db
        if url.startswith("sqlite:///"):
            with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
                return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
        import psycopg

        plain = url.replace("+psycopg2", "").replace("+psycopg", "")
        with psycopg.connect(plain) as conn:
            row = conn.execute("SELECT count(*) FROM spans").fetchone()
            return int(row[0]) if row else 0


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    counts = results["counts"]
    print(
        f"OTLP traces into cauce server vs mlflow server {MLFLOW_VERSION}; {m['cpu_count']} CPUs, "
        f"Python {m['python']}; {WORKERS} workers each; {counts['traces_per_request']} traces "
        f"({counts['traces_per_request'] * SPANS_PER_TRACE} spans) a request; "
        f"load {m['load_before']:.2f} -> {m['load_after']:.2f}"
    )
    for backend, found in results["backends"].items():
        seq, conc = found["sequential"], found["concurrent"]
        print(f"\n{backend}:")
        for side in seq:
            print(
                f"  {side:6}  one at a time: {seq[side]['spans_per_s']:8.0f} spans/s, "
                f"p50 {seq[side]['p50'] * 1e3:7.1f} ms, p99 {seq[side]['p99'] * 1e3:7.1f} ms;  "
                f"{counts['clients']} clients: {conc[side]['spans_per_s']:8.0f} spans/s;  "
                f"stored {found['stored'][side]['stored']}/{found['stored'][side]['sent']}"
            )
        if "mlflow" in seq:
            ratio = seq["cauce"]["spans_per_s"] / seq["mlflow"]["spans_per_s"]
            ratio_c = conc["cauce"]["spans_per_s"] / conc["mlflow"]["spans_per_s"]
            print(f"  cauce / mlflow: {ratio:.2f}x one at a time, {ratio_c:.2f}x concurrent")


if __name__ == "__main__":
    sys.exit(main())
