"""One client of ``server_vs_mlflow.py``, run with either side's interpreter; JSON lines on stdio.

Kinds (``--kind``):

- ``cauce``: Cauce's SDK with ``CAUCE_SERVER_URL`` set by the parent (every call goes to the
  server), in the project's interpreter;
- ``mlflow``: the MLflow client with ``MLFLOW_TRACKING_URI`` set by the parent (``mlflow
  server`` or ``cauce server``), in the peer venv's interpreter;
- ``cauce-local``: Cauce's SDK on the server's own database (``CAUCE_HOME``/``CAUCE_DB_URL``,
  no server): fills it with runs in bulk, times ``search_runs`` as the server runs it, counts rows;
- ``mlflow-sql``: SQLAlchemy on ``mlflow server``'s database (``--db``): fills MLflow's tables
  with runs in bulk (the server is not involved; MLflow has no bulk path);
- ``concurrent``: one of the concurrent clients: starts a run, says ``ready``, waits for ``go``
  on stdin, logs ``--metrics`` values one call each and prints its run id and errors.

Each command is one JSON object per line on stdin; each answer one JSON object per line on
stdout. A timed command answers per-call seconds: ``{"samples": [...]}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

# The query of the search measurement, the same on both sides.
SEARCH_FILTER = "metrics.auc > 0.5 and params.model = 'rf'"
SEARCH_ORDER = "metrics.auc DESC"
SEARCH_MAX = 100
MODELS = ("rf", "lr", "gb")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True)
    parser.add_argument("--url", help="the server's base URL (raw HTTP timings)")
    parser.add_argument("--db", help="mlflow-sql: the database URL")
    parser.add_argument("--metrics", type=int, default=1000, help="concurrent: values to log")
    args = parser.parse_args()
    if args.kind == "concurrent":
        concurrent(args.metrics)
        return
    side = {
        "cauce": CauceClient,
        "mlflow": MlflowClientSide,
        "cauce-local": CauceLocal,
        "mlflow-sql": MlflowSql,
    }[args.kind](args)
    for line in sys.stdin:
        command = json.loads(line)
        answer = getattr(side, command.pop("cmd"))(**command)
        print(json.dumps(answer), flush=True)


def timed(call: Any, n: int, warmup: int) -> list[float]:
    """Per-call seconds of ``call(i)`` for ``n`` calls after ``warmup`` untimed ones."""
    for i in range(warmup):
        call(-1 - i)
    samples = []
    clock = time.perf_counter
    for i in range(n):
        t = clock()
        call(i)
        samples.append(clock() - t)
    return samples


class RawHttp:
    """A keep-alive HTTP/1.1 connection (stdlib), for round trips without a client library."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def time(self, method: str, path: str, body: Any, n: int, warmup: int) -> dict[str, Any]:
        status, payload = self.request(method, path, body)
        samples = timed(lambda i: self.request(method, path, body), n, warmup)
        return {"samples": samples, "status": status, "bytes": len(payload)}


class CauceClient:
    """Cauce's SDK through ``cauce server``."""

    def __init__(self, args: argparse.Namespace):
        import cauce

        self.cauce = cauce
        self.raw = RawHttp(args.url) if args.url else None
        self.run = None

    def setup(self, experiment: str) -> dict[str, Any]:
        self.run = self.cauce.start_run(experiment=experiment)
        return {"run_id": self.run.info.run_id, "version": self.cauce.__version__}

    def time(self, op: str, n: int, warmup: int) -> dict[str, Any]:
        c = self.cauce
        run_id = self.run.info.run_id
        calls = {
            "log_metric": lambda i: c.log_metric("loss", 0.5 + i * 1e-6, step=i),
            "log_param": lambda i: c.log_param(f"p{i}", "value"),
            "set_tag": lambda i: c.set_tag(f"t{i}", "value"),
            "get_run": lambda i: c.get_run(run_id),
        }
        return {"samples": timed(calls[op], n, warmup)}

    def search_http(self, experiment_id: str, n: int, warmup: int) -> dict[str, Any]:
        """``GET /api/v1/runs`` and ``GET /health`` round trips, raw HTTP, in turns."""
        assert self.raw is not None
        query = urlencode(
            {
                "experiment": experiment_id,
                "filter": SEARCH_FILTER,
                "order_by": SEARCH_ORDER,
                "max_results": SEARCH_MAX,
            }
        )
        return paired(self.raw, ("GET", f"/api/v1/runs?{query}", None), n, warmup)

    def search_sdk(self, n: int, warmup: int) -> dict[str, Any]:
        """``cauce.search_runs`` through the server (the SDK's own round trip)."""
        found: list[Any] = []

        def call(i: int) -> None:
            found[:] = self.cauce.search_runs(
                "search", filter=SEARCH_FILTER, order_by=[SEARCH_ORDER], max_results=SEARCH_MAX
            )

        return {"samples": timed(call, n, warmup), "found": len(found)}

    def end(self) -> dict[str, Any]:
        self.cauce.end_run()
        return {}


def paired(raw: RawHttp, request: tuple[str, str, Any], n: int, warmup: int) -> dict[str, Any]:
    """The request and a trivial ``GET /health`` alternately: their samples and the answer."""
    method, path, body = request
    status, payload = raw.request(method, path, body)
    if status != 200:
        raise SystemExit(f"{method} {path} answered {status}: {payload[:500]!r}")
    for _ in range(warmup):
        raw.request(method, path, body)
        raw.request("GET", "/health")
    clock = time.perf_counter
    request_s, trivial_s = [], []
    for _ in range(n):
        t = clock()
        raw.request(method, path, body)
        request_s.append(clock() - t)
        t = clock()
        raw.request("GET", "/health")
        trivial_s.append(clock() - t)
    answer = json.loads(payload)
    return {"samples": request_s, "trivial": trivial_s, "bytes": len(payload), "answer": answer}


class MlflowClientSide:
    """The MLflow client (fluent API and ``MlflowClient``) against ``MLFLOW_TRACKING_URI``."""

    def __init__(self, args: argparse.Namespace):
        import mlflow

        self.mlflow = mlflow
        self.client = mlflow.MlflowClient()
        self.raw = RawHttp(args.url) if args.url else None
        self.run_id = ""

    def setup(self, experiment: str) -> dict[str, Any]:
        self.mlflow.set_experiment(experiment)
        self.run_id = self.mlflow.start_run().info.run_id
        return {"run_id": self.run_id, "version": self.mlflow.__version__}

    def time(self, op: str, n: int, warmup: int) -> dict[str, Any]:
        m = self.mlflow
        run_id = self.run_id
        calls = {
            "log_metric": lambda i: m.log_metric("loss", 0.5 + i * 1e-6, step=i),
            "log_param": lambda i: m.log_param(f"p{i}", "value"),
            "set_tag": lambda i: m.set_tag(f"t{i}", "value"),
            "get_run": lambda i: self.client.get_run(run_id),
        }
        return {"samples": timed(calls[op], n, warmup)}

    def experiment_id(self, name: str) -> dict[str, Any]:
        exp = self.client.get_experiment_by_name(name)
        exp_id = self.client.create_experiment(name) if exp is None else exp.experiment_id
        return {"experiment_id": exp_id}

    def search_http(self, experiment_id: str, n: int, warmup: int) -> dict[str, Any]:
        """``POST /api/2.0/mlflow/runs/search`` and ``GET /health`` round trips, in turns."""
        assert self.raw is not None
        body = {
            "experiment_ids": [experiment_id],
            "filter": SEARCH_FILTER,
            "order_by": [SEARCH_ORDER],
            "max_results": SEARCH_MAX,
        }
        out = paired(self.raw, ("POST", "/api/2.0/mlflow/runs/search", body), n, warmup)
        out["found"] = len(out.pop("answer").get("runs", []))
        return out

    def search_client(self, experiment_id: str, n: int, warmup: int) -> dict[str, Any]:
        """``MlflowClient.search_runs``: the client's own round trip."""
        found: list[Any] = []

        def call(i: int) -> None:
            found[:] = self.client.search_runs(
                [experiment_id], SEARCH_FILTER, order_by=[SEARCH_ORDER], max_results=SEARCH_MAX
            )

        return {"samples": timed(call, n, warmup), "found": len(found)}

    def end(self) -> dict[str, Any]:
        self.mlflow.end_run()
        return {}


class CauceLocal:
    """Cauce's SDK on the server's own database, no server in between."""

    def __init__(self, args: argparse.Namespace):
        import cauce
        from cauce.workspace import current

        self.cauce = cauce
        self.ws = current()
        self.rng = random.Random(7)

    def populate(self, experiment: str, total: int) -> dict[str, Any]:
        """Insert runs (an ``auc`` and a ``loss`` metric, a ``model`` param, a tag each) in bulk
        through the store's engine until ``experiment`` holds ``total``; the seconds it took."""
        from sqlalchemy import func, select

        from cauce.store.schema import metrics, params, run_tags, runs
        from cauce.tracking.experiments import create_experiment, get_experiment

        try:
            exp_id = get_experiment(experiment).experiment_id
        except self.cauce.errors.NotFound:
            exp_id = create_experiment(experiment).experiment_id
        engine = self.ws.store.engine
        with engine.connect() as conn:
            have = conn.execute(
                select(func.count()).select_from(runs).where(runs.c.experiment_id == exp_id)
            ).scalar_one()
        t0 = time.perf_counter()
        now = int(time.time() * 1000)
        rng = self.rng
        for start in range(have, total, 10_000):
            rr, mm, pp, tt = [], [], [], []
            for i in range(start, min(total, start + 10_000)):
                rid = uuid.uuid4().hex
                rr.append(
                    {
                        "id": rid,
                        "experiment_id": exp_id,
                        "name": f"run-{i}",
                        "status": "FINISHED",
                        "start_time": now + i,
                        "end_time": now + i + 1,
                        "user": "bench",
                        "lifecycle_stage": "active",
                    }
                )
                for key in ("auc", "loss"):
                    mm.append(
                        {
                            "run_id": rid,
                            "key": key,
                            "value": rng.random(),
                            "is_nan": False,
                            "step": 0,
                            "timestamp": now + i,
                        }
                    )
                pp.append({"run_id": rid, "key": "model", "value": rng.choice(MODELS)})
                tt.append({"run_id": rid, "key": "team", "value": rng.choice("ab")})
            with engine.begin() as conn:
                conn.execute(runs.insert(), rr)
                conn.execute(metrics.insert(), mm)
                conn.execute(params.insert(), pp)
                conn.execute(run_tags.insert(), tt)
        analyze(engine)
        return {"experiment_id": exp_id, "added": total - have, "seconds": time.perf_counter() - t0}

    def search(self, experiment: str, n: int, warmup: int) -> dict[str, Any]:
        """``search_runs`` in this process, the function the server runs for ``GET /runs``."""
        from cauce.tracking.search import search_runs

        found: list[Any] = []

        def call(i: int) -> None:
            found[:] = search_runs(
                experiment, filter=SEARCH_FILTER, order_by=[SEARCH_ORDER], max_results=SEARCH_MAX
            )

        samples = timed(call, n, warmup)
        return {"samples": samples, "found": len(found), "first": found[0].info.run_name}

    def count(self, run_ids: list[str]) -> dict[str, Any]:
        """Metric rows and distinct steps per run, read from the database."""
        from sqlalchemy import func, select

        from cauce.store.schema import metrics

        query = (
            select(metrics.c.run_id, func.count(), func.count(func.distinct(metrics.c.step)))
            .where(metrics.c.run_id.in_(run_ids))
            .group_by(metrics.c.run_id)
        )
        with self.ws.store.engine.connect() as conn:
            rows = {r[0]: [int(r[1]), int(r[2])] for r in conn.execute(query)}
        return {"rows": rows}


class MlflowSql:
    """MLflow's tables, filled directly (MLflow's own schema, reflected)."""

    def __init__(self, args: argparse.Namespace):
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(args.db)
        self.rng = random.Random(7)

    def populate(self, experiment_id: str, total: int) -> dict[str, Any]:
        sa = self.sa
        meta = sa.MetaData()
        t = {
            name: sa.Table(name, meta, autoload_with=self.engine)
            for name in ("runs", "metrics", "latest_metrics", "params", "tags")
        }
        with self.engine.connect() as conn:
            have = conn.execute(
                sa.select(sa.func.count())
                .select_from(t["runs"])
                .where(t["runs"].c.experiment_id == int(experiment_id))
            ).scalar_one()
        t0 = time.perf_counter()
        now = int(time.time() * 1000)
        rng = self.rng
        for start in range(have, total, 5_000):
            rr, mm, pp, tt = [], [], [], []
            for i in range(start, min(total, start + 5_000)):
                rid = uuid.uuid4().hex
                rr.append(
                    {
                        "run_uuid": rid,
                        "name": f"run-{i}",
                        "source_type": "LOCAL",
                        "source_name": "",
                        "entry_point_name": "",
                        "user_id": "bench",
                        "status": "FINISHED",
                        "start_time": now + i,
                        "end_time": now + i + 1,
                        "source_version": "",
                        "lifecycle_stage": "active",
                        "artifact_uri": f"/tmp/mlflow-bench/{rid}/artifacts",
                        "experiment_id": int(experiment_id),
                    }
                )
                for key in ("auc", "loss"):
                    mm.append(
                        {
                            "key": key,
                            "value": rng.random(),
                            "timestamp": now + i,
                            "run_uuid": rid,
                            "step": 0,
                            "is_nan": False,
                        }
                    )
                pp.append({"key": "model", "value": rng.choice(MODELS), "run_uuid": rid})
                tt.append({"key": "team", "value": rng.choice("ab"), "run_uuid": rid})
            with self.engine.begin() as conn:
                conn.execute(t["runs"].insert(), rr)
                conn.execute(t["metrics"].insert(), mm)
                conn.execute(t["latest_metrics"].insert(), mm)
                conn.execute(t["params"].insert(), pp)
                conn.execute(t["tags"].insert(), tt)
        analyze(self.engine)
        return {"added": total - have, "seconds": time.perf_counter() - t0}


def analyze(engine: Any) -> None:
    """Refresh the planner's statistics after a bulk load, as autovacuum would soon after one
    on a live server (both sides alike); SQLite's planner keeps none unless asked."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def concurrent(n: int) -> None:
    """One concurrent client: a run, ``n`` log_metric calls, each error counted, not raised."""
    import cauce

    run = cauce.start_run(experiment="concurrent")
    print(json.dumps({"ready": run.info.run_id}), flush=True)
    sys.stdin.readline()
    errors: list[str] = []
    t0 = time.perf_counter()
    for i in range(n):
        try:
            cauce.log_metric("m", float(i), step=i)
        except Exception as exc:  # counted and reported: the measurement is the error count
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    elapsed = time.perf_counter() - t0
    cauce.end_run()
    print(
        json.dumps(
            {"run_id": run.info.run_id, "errors": len(errors), "first": errors[:3], "s": elapsed}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
