"""Durability under crashes and concurrent writers, with real processes.

A metric write that returned is in the store even when the process is killed right after, and
several processes logging at once (to an initialised or a fresh, un-migrated store) lose nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cauce.store.schema import metrics, runs
from cauce.tracking import runs as tracking_runs
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow

KILL_AFTER = 300
WORKERS = 8
METRICS_PER_WORKER = 5_000

# Logs a metric per step and, only once log_metric has returned, reports the step on stdout.
LOGGER = textwrap.dedent(
    """
    import sys
    import cauce

    run = cauce.start_run(experiment="durability")
    print("run", run.run_id, flush=True)
    step = 0
    while True:
        cauce.log_metric("loss", 1.0 / (step + 1), step=step)
        print(step, flush=True)
        step += 1
    """
)

# Imports everything first, says "ready", waits for "go" on stdin, then logs its metrics: the
# parent releases every worker at the same moment.
WORKER = textwrap.dedent(
    """
    import sys
    import time

    import sqlalchemy  # noqa: F401  (warm imports, so that the workers start their writes together)
    import cauce
    import cauce.tracking.fluent  # noqa: F401

    worker, count = int(sys.argv[1]), int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    with cauce.start_run(experiment="load", run_name=f"worker-{worker}") as run:
        for step in range(count):
            cauce.log_metric("m", float(step), step=step)
    print("done", run.run_id, round(time.perf_counter() - started, 3), flush=True)
    """
)


def _env() -> dict[str, str]:
    """This test's environment (CAUCE_HOME, CAUCE_DB_URL...) for child processes."""
    return dict(os.environ)


def test_every_reported_metric_survives_sigkill(any_workspace: Workspace, tmp_path: Path) -> None:
    stderr_path = tmp_path / "logger.err"
    with open(stderr_path, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", LOGGER],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_env(),
        )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("run "), f"logger failed to start: {stderr_path.read_text()}"
        run_id = first.split()[1]
        reported: list[int] = []
        deadline = time.monotonic() + 120
        while not reported or reported[-1] < KILL_AFTER:
            line = child.stdout.readline()
            assert line.endswith("\n"), f"logger stopped: {stderr_path.read_text()}"
            reported.append(int(line))
            assert time.monotonic() < deadline, "logger too slow"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # Lines written before the kill are still in the pipe; a partial line is not a report.
        reported += [
            int(line)
            for line in child.stdout.read().splitlines(keepends=True)
            if line.endswith("\n")
        ]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    stored = [m.step for m in tracking_runs.get_metric_history(run_id, "loss")]
    missing = sorted(set(reported) - set(stored))
    assert not missing, f"{len(missing)} reported metrics lost, first {missing[:10]}"
    # At most the one call in flight when the process died got in without being reported.
    assert stored == list(range(len(stored)))
    assert len(reported) <= len(stored) <= len(reported) + 1
    assert tracking_runs.get_run(run_id).info.status == "RUNNING"


def _run_workers(tmp_path: Path) -> tuple[float, list[str]]:
    """Start the workers, release them together, wait; return the wall time and their reports."""
    procs: list[subprocess.Popen[str]] = []
    errors: list[Path] = []
    try:
        for worker in range(WORKERS):
            errors.append(tmp_path / f"worker-{worker}.err")
            with open(errors[-1], "w") as stderr:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WORKER, str(worker), str(METRICS_PER_WORKER)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                        text=True,
                        env=_env(),
                    )
                )
        for proc, err in zip(procs, errors, strict=True):
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", err.read_text()
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=240)[0] for proc in procs]
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    failures = [
        f"worker {i} exited {proc.returncode}: {err.read_text()[-2000:]}"
        for i, (proc, err) in enumerate(zip(procs, errors, strict=True))
        if proc.returncode != 0
    ]
    assert not failures, "\n".join(failures)
    return elapsed, outputs


def _check_every_metric_is_stored(ws: Workspace, outputs: list[str]) -> None:
    from sqlalchemy import func, select

    run_ids = sorted(
        line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("done ")
    )
    assert len(run_ids) == WORKERS
    with ws.store.read() as conn:
        total = conn.execute(select(func.count()).select_from(metrics)).scalar()
        per_run = conn.execute(
            select(
                metrics.c.run_id,
                func.count(),
                func.count(func.distinct(metrics.c.step)),
                func.min(metrics.c.step),
                func.max(metrics.c.step),
            ).group_by(metrics.c.run_id)
        ).all()
        statuses = conn.execute(select(runs.c.status).where(runs.c.id.in_(run_ids))).scalars()
        assert sorted(statuses) == ["FINISHED"] * WORKERS
    assert total == WORKERS * METRICS_PER_WORKER
    n = METRICS_PER_WORKER
    assert sorted(tuple(r) for r in per_run) == [(rid, n, n, 0, n - 1) for rid in run_ids]


def _report(label: str, elapsed: float, outputs: list[str]) -> None:
    times = [
        float(line.split()[2])
        for out in outputs
        for line in out.splitlines()
        if line.startswith("done ")
    ]
    rate = WORKERS * METRICS_PER_WORKER / elapsed
    print(
        f"\n{label}: {WORKERS}x{METRICS_PER_WORKER} metrics in {elapsed:.1f}s "
        f"({rate:,.0f}/s); slowest worker {max(times):.1f}s"
    )


@pytest.mark.parametrize("store_state", ["initialised", "fresh"])
def test_concurrent_writers_on_sqlite_lose_nothing(
    workspace: Workspace, tmp_path: Path, store_state: str
) -> None:
    if store_state == "initialised":
        workspace.store.upgrade()
        workspace.store.close()
    else:
        assert not (workspace.settings.state_dir / "cauce.db").exists()

    elapsed, outputs = _run_workers(tmp_path)

    _check_every_metric_is_stored(workspace, outputs)
    _report(f"SQLite, {store_state} store", elapsed, outputs)
    assert elapsed < 180  # a hang guard; the timings are printed above (-s)


@pytest.mark.postgres
@pytest.mark.parametrize("store_state", ["initialised", "fresh"])
def test_concurrent_writers_on_postgres_lose_nothing(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
    store_state: str,
) -> None:
    from cauce import workspace as workspace_module

    monkeypatch.setenv("CAUCE_DB_URL", pg_url)
    workspace_module.reset()
    ws = workspace_module.current()
    if store_state == "initialised":
        ws.store.upgrade()
        ws.store.close()
    else:
        assert ws.store.current_revision() is None
        ws.store.close()

    elapsed, outputs = _run_workers(tmp_path)

    _check_every_metric_is_stored(ws, outputs)
    _report(f"PostgreSQL, {store_state} store", elapsed, outputs)
    assert elapsed < 180  # a hang guard; the timings are printed above (-s)
