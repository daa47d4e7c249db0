"""One side of the tracking benchmark, run in a fresh process by ``tracking_vs_mlflow.py``.

It imports only the standard library at the top, so the same file runs under Cauce's interpreter
(``--side cauce``) and under the MLflow virtual environment (``--side mlflow``). The backend is a
new SQLite database in ``--dir``; every timed loop is preceded by warm-up calls that are not
timed, and every loop is checked afterwards (the rows it wrote are read back and counted).

Example::

    python benchmarks/tracking_worker.py --side cauce --dir /tmp/x --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Protocol

EXPERIMENT = "bench"


class Side(Protocol):
    """The operations the benchmark times, in one tracking library."""

    name: str
    version: str

    def start(self) -> str:
        """Start a run in the benchmark experiment and make it active; return its id."""

    def end(self) -> None:
        """End the active run."""

    def log_metric(self, key: str, value: float, step: int) -> None:
        """Log one metric value to the active run."""

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """Log several metric values to the active run in one call."""

    def history_len(self, run_id: str, key: str) -> int:
        """How many values of ``key`` the run has stored."""

    def sqlite_settings(self) -> dict[str, str]:
        """``journal_mode`` and ``synchronous`` as seen by the library's own connection."""


class CauceSide:
    """Cauce's fluent API on a workspace in ``folder``; ``CAUCE_SQLITE_SYNC`` picks the mode."""

    name = "cauce"

    def __init__(self, folder: Path) -> None:
        os.environ["CAUCE_HOME"] = str(folder)
        import cauce

        self._cauce = cauce
        self.version = cauce.__version__

    def start(self) -> str:
        return self._cauce.start_run(experiment=EXPERIMENT).run_id

    def end(self) -> None:
        self._cauce.end_run()

    def log_metric(self, key: str, value: float, step: int) -> None:
        self._cauce.log_metric(key, value, step=step)

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        self._cauce.log_metrics(values, step=step)

    def history_len(self, run_id: str, key: str) -> int:
        return len(self._cauce.get_metric_history(run_id, key))

    def sqlite_settings(self) -> dict[str, str]:
        from cauce.workspace import current

        with current().store.engine.connect() as conn:
            return _pragmas(conn)


class MlflowSide:
    """MLflow's fluent API against ``sqlite:///<folder>/mlflow.db``, synchronous logging."""

    name = "mlflow"

    def __init__(self, folder: Path) -> None:
        import mlflow

        self._mlflow = mlflow
        self.version = mlflow.__version__
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        mlflow.set_experiment(EXPERIMENT)
        self._client = mlflow.MlflowClient()

    def start(self) -> str:
        return str(self._mlflow.start_run().info.run_id)

    def end(self) -> None:
        self._mlflow.end_run()

    def log_metric(self, key: str, value: float, step: int) -> None:
        self._mlflow.log_metric(key, value, step=step)

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        self._mlflow.log_metrics(values, step=step)

    def history_len(self, run_id: str, key: str) -> int:
        return len(self._client.get_metric_history(run_id, key))

    def sqlite_settings(self) -> dict[str, str]:
        from mlflow.tracking._tracking_service.utils import _get_store

        with _get_store().engine.connect() as conn:
            return _pragmas(conn)


def _pragmas(conn: Any) -> dict[str, str]:
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    return {"journal_mode": str(journal).upper(), "synchronous": names.get(sync, str(sync))}


def _summary(samples: list[float], cpu: list[float]) -> dict[str, Any]:
    # CPU time of this process alongside the wall time: the wall time also counts waits for the
    # disk (fsync) and for other processes on a busy machine.
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "cpu_median_s": statistics.median(cpu),
        "samples_s": samples,
        "cpu_samples_s": cpu,
    }


def bench_log_metric(side: Side, calls: int, reps: int, warmup: int) -> dict[str, Any]:
    """Per-call time of ``log_metric``: each repetition is a new run, ``calls`` timed calls."""
    per_call: list[float] = []
    cpu: list[float] = []
    for rep in range(reps):
        run_id = side.start()
        for step in range(warmup):
            side.log_metric("loss", rep + step * 1e-3, step)
        start, start_cpu = time.perf_counter(), time.process_time()
        for step in range(warmup, warmup + calls):
            side.log_metric("loss", rep + step * 1e-3, step)
        per_call.append((time.perf_counter() - start) / calls)
        cpu.append((time.process_time() - start_cpu) / calls)
        side.end()
        stored = side.history_len(run_id, "loss")
        if stored != warmup + calls:
            raise SystemExit(f"{side.name}: log_metric stored {stored} of {warmup + calls} values")
    return {"calls_per_rep": calls, "reps": reps, "warmup_calls": warmup, **_summary(per_call, cpu)}


def bench_log_metrics(side: Side, calls: int, size: int, warmup: int) -> dict[str, Any]:
    """Time of one ``log_metrics`` call with ``size`` values, each call a new step."""
    keys = [f"m{i:04d}" for i in range(size)]
    samples: list[float] = []
    cpu: list[float] = []
    run_id = side.start()
    for step in range(warmup + calls):
        values = {k: step + i * 1e-6 for i, k in enumerate(keys)}
        start, start_cpu = time.perf_counter(), time.process_time()
        side.log_metrics(values, step)
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if step >= warmup:
            samples.append(elapsed)
            cpu.append(elapsed_cpu)
    side.end()
    stored = side.history_len(run_id, keys[-1])
    if stored != warmup + calls:
        raise SystemExit(f"{side.name}: log_metrics stored {stored} of {warmup + calls} steps")
    return {"calls": calls, "size": size, "warmup_calls": warmup, **_summary(samples, cpu)}


def bench_empty_run(side: Side, calls: int, warmup: int) -> dict[str, Any]:
    """Time to start and end a run that logs nothing."""
    samples: list[float] = []
    cpu: list[float] = []
    for i in range(warmup + calls):
        start, start_cpu = time.perf_counter(), time.process_time()
        side.start()
        side.end()
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if i >= warmup:
            samples.append(elapsed)
            cpu.append(elapsed_cpu)
    return {"calls": calls, "warmup_calls": warmup, **_summary(samples, cpu)}


def main() -> None:
    """Parse the arguments, run the three timed loops and write the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["cauce", "mlflow"], required=True)
    parser.add_argument("--dir", type=Path, required=True, help="empty folder for the database")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--metric-calls", type=int, default=2000)
    parser.add_argument("--metric-reps", type=int, default=5)
    parser.add_argument("--metric-warmup", type=int, default=50)
    parser.add_argument("--batch-calls", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-warmup", type=int, default=2)
    parser.add_argument("--run-calls", type=int, default=100)
    parser.add_argument("--run-warmup", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    side: Side = CauceSide(args.dir) if args.side == "cauce" else MlflowSide(args.dir)
    # The first run creates the schema (migrations) and the experiment: setup, not timed.
    side.start()
    side.end()
    setup_s = time.perf_counter() - started

    result = {
        "side": side.name,
        "version": side.version,
        "setup_s": setup_s,
        "log_metric": bench_log_metric(
            side, args.metric_calls, args.metric_reps, args.metric_warmup
        ),
        "log_metrics": bench_log_metrics(
            side, args.batch_calls, args.batch_size, args.batch_warmup
        ),
        "empty_run": bench_empty_run(side, args.run_calls, args.run_warmup),
        "sqlite": side.sqlite_settings(),
    }
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
