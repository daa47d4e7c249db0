"""Retries, timeouts, failure isolation, resume from cache, and what every run stores."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import cauce
from cauce.errors import InvalidInput, NotFound
from cauce.pipelines.runs import get_pipeline_run, list_pipeline_runs
from cauce.workspace import Workspace
from remote import server_side


def test_retries_until_success(workspace: Workspace, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"

    @cauce.step(retries=3, retry_backoff=0.01)
    def flaky(path: str) -> int:
        n = int(Path(path).read_text()) + 1 if Path(path).exists() else 1
        Path(path).write_text(str(n))
        if n < 3:
            raise RuntimeError(f"attempt {n} failed")
        return n

    @cauce.pipeline
    def retrying(path: str):
        return flaky(path)

    started = time.perf_counter()
    run = retrying.run(path=str(counter))
    assert run.succeeded
    assert run.steps["flaky"].attempts == 3
    assert run.output("flaky") == 3
    assert time.perf_counter() - started >= 0.03  # backoff 0.01 s, then 0.02 s


def test_retries_exhausted_fail_with_the_last_error(workspace: Workspace) -> None:
    @cauce.step(retries=1)
    def broken() -> int:
        raise ValueError("bad data")

    @cauce.pipeline
    def failing():
        return broken()

    run = failing.run()
    assert run.status == "FAILED"
    step = run.steps["broken"]
    assert (step.status, step.attempts, step.error) == ("FAILED", 2, "ValueError: bad data")
    assert run.error == "step 'broken' failed: ValueError: bad data"
    with pytest.raises(NotFound, match="has no output"):
        run.output("broken")


def test_timeout(workspace: Workspace) -> None:
    @cauce.step(timeout=0.2, retries=1)
    def slow() -> int:
        time.sleep(5)
        return 1

    @cauce.pipeline
    def sleepy():
        return slow()

    started = time.perf_counter()
    run = sleepy.run()
    assert time.perf_counter() - started < 2
    step = run.steps["slow"]
    assert step.status == "FAILED" and step.attempts == 2
    assert step.error == "StepTimeout: step 'slow' timed out after 0.2 s"


def test_timeout_off_the_main_thread(workspace: Workspace) -> None:
    @cauce.step(timeout=0.1)
    def slow() -> int:
        time.sleep(0.6)
        return 1

    @cauce.pipeline
    def sleepy():
        return slow()

    box = {}
    thread = threading.Thread(target=lambda: box.update(run=sleepy.run(workspace=workspace)))
    thread.start()
    thread.join(10)
    assert "timed out" in (box["run"].steps["slow"].error or "")
    time.sleep(0.6)  # let the abandoned step thread finish before the workspace goes


def test_failure_stops_only_dependents_then_resumes_from_cache(
    workspace: Workspace, tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed"

    @cauce.step
    def root() -> int:
        return 1

    @cauce.step
    def fragile(x: int) -> int:
        if not fixed.exists():
            raise OSError("disk not ready")
        return x + 1

    @cauce.step
    def after(x: int) -> int:
        return x * 10

    @cauce.step
    def independent(x: int) -> int:
        return x - 1

    @cauce.pipeline
    def branches():
        r = root()
        return [after(fragile(r)), independent(r)]

    run = branches.run()
    assert run.status == "FAILED"
    status = {n: s.status for n, s in run.steps.items()}
    assert status == {
        "root": "SUCCEEDED",
        "fragile": "FAILED",
        "after": "SKIPPED",
        "independent": "SUCCEEDED",
    }
    assert run.steps["after"].attempts == 0
    assert run.steps["after"].error == "not run: upstream step 'fragile' did not succeed"
    assert "1 dependent step skipped" in (run.error or "")

    fixed.touch()
    resumed = branches.run()
    assert resumed.succeeded
    hits = {n: s.cache_hit for n, s in resumed.steps.items()}
    assert hits == {"root": True, "independent": True, "fragile": False, "after": False}
    assert resumed.result() == [20, 0]


def test_every_run_is_stored_audited_and_linked(workspace: Workspace) -> None:
    import pandas as pd
    from sqlalchemy import select

    from cauce.lineage.graph import walk
    from cauce.store.schema import artifacts, audit_events, pipelines
    from cauce.store.schema import lineage_edges as e

    @cauce.step
    def table(n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": range(n), "b": [None if i % 4 == 0 else i for i in range(n)]})

    @cauce.step
    def count(df: pd.DataFrame) -> int:
        return len(df)

    @cauce.pipeline
    def stored(n: int = 8):
        return count(table(n))

    run = stored.run(n=8)
    again = stored.run(n=8)
    assert [r.id for r in list_pipeline_runs()] == [again.id, run.id]
    assert list_pipeline_runs("other") == []
    assert [r.id for r in list_pipeline_runs(max_results=1)] == [again.id]
    for bad in (0, -1, 1.5, "many"):  # "many" raised a TypeError from the comparison
        with pytest.raises(InvalidInput, match="max_results"):
            list_pipeline_runs(max_results=bad)  # type: ignore[arg-type]
    loaded = get_pipeline_run(run.id)
    assert (loaded.pipeline, loaded.status, loaded.executor, loaded.params, loaded.user) == (
        "stored",
        "SUCCEEDED",
        "local",
        {"n": 8},
        "tester",
    )
    assert loaded.end_time is not None and loaded.end_time >= loaded.start_time
    step = loaded.steps["table"]
    assert step.inputs == {"n": {"value": 8}}
    assert step.output is not None and step.output["kind"] == "parquet"
    assert step.stats is not None
    assert step.stats["rows"] == 8 and step.stats["null_rates"] == {"a": 0.0, "b": 0.25}
    assert step.stats["duration_ms"] >= 0 and step.duration_ms is not None
    counted = loaded.steps["count"]
    assert counted.inputs == {
        "df": {"step": "table", "sha256": step.output["sha256"], "kind": "parquet"}
    }
    assert counted.stats == {"duration_ms": counted.duration_ms}
    assert again.steps["table"].stats["rows"] == 8  # type: ignore[index]

    with server_side(workspace).store.read() as conn:
        assert conn.execute(select(pipelines.c.name)).scalars().all() == ["stored"]
        stored_shas = set(conn.execute(select(artifacts.c.sha256)).scalars())
        actions = conn.execute(select(audit_events.c.action)).scalars().all()
    assert step.output["sha256"] in stored_shas
    assert actions.count("pipeline_run.start") == 2 and actions.count("pipeline_run.end") == 2
    assert actions.count("step_run.end") == 4

    reached = {
        n["id"] for n in walk(workspace, "pipeline_run", run.id, "downstream").to_dict()["nodes"]
    }
    assert {s.id for s in loaded.steps.values()} <= reached
    with server_side(workspace).store.read() as conn:
        edges = {
            (r.src_id, r.dst_id, r.relation)
            for r in conn.execute(select(e.c.src_id, e.c.dst_id, e.c.relation))
        }
    t, c = loaded.steps["table"].id, loaded.steps["count"].id
    assert {(run.id, t, "step"), (run.id, c, "step"), (t, c, "input")} <= edges
    assert (t, again.steps["table"].id, "cached") in edges
    with pytest.raises(NotFound):
        get_pipeline_run("nope")


def test_unserializable_output_fails_the_step_by_name(workspace: Workspace) -> None:
    @cauce.step
    def locked() -> object:
        return threading.Lock()

    @cauce.pipeline
    def unsafe():
        return locked()

    run = unsafe.run()
    step = run.steps["locked"]
    assert step.status == "FAILED"
    assert "step 'locked' returned a _thread.lock that no materializer can store" in (
        step.error or ""
    )


def test_docs_example_runs(workspace: Workspace) -> None:
    import importlib.util

    path = Path(__file__).parents[2] / "docs" / "examples" / "pipeline_example.py"
    spec = importlib.util.spec_from_file_location("pipeline_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.training.run(rows=300)
    assert run.succeeded, run.error
    assert 0.5 <= run.result()["accuracy"] <= 1.0
    assert run.steps["train"].output["kind"] == "skops"
    assert run.steps["ingest"].stats["null_rates"]["charges"] > 0
    assert all(s.cache_hit for s in module.training.run(rows=300).steps.values())


def test_a_non_json_parameter_is_stored_and_passed_by_sha256(workspace: Workspace) -> None:
    import pandas as pd

    @cauce.step
    def width(df: pd.DataFrame, extra: int = 0) -> int:
        return len(df.columns) + extra

    @cauce.pipeline
    def frames(df: pd.DataFrame, extra: int = 0):
        return width(df, extra)

    data = pd.DataFrame({"a": [1], "b": [2]})
    run = frames.run(df=data, extra=1)
    assert run.result() == 3
    assert run.params == {"df": "<DataFrame>", "extra": 1}
    arg = run.steps["width"].inputs["df"]
    assert arg["kind"] == "parquet" and workspace.artifacts.exists(arg["sha256"])
    assert frames.run(df=data.copy(), extra=1).steps["width"].cache_hit
    assert not frames.run(df=data.assign(c=3), extra=1).steps["width"].cache_hit


def test_a_step_timeout_keeps_an_earlier_timer(workspace: Workspace) -> None:
    import signal

    @cauce.step(timeout=5)
    def quick() -> int:
        return 1

    @cauce.pipeline
    def short():
        return quick()

    fired = []
    outer = signal.getitimer(signal.ITIMER_REAL)  # pytest-timeout's, if any: put back below
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        assert short.run().succeeded
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left < 30  # still armed, less the time the run took
        assert fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer[0] - 1, 0.001), outer[1])
