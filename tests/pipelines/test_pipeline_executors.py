"""The process-pool executor: same outputs and cache keys as local, parallel branches."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cauce.pipelines import executors
from cauce.pipelines.loading import load_pipeline
from cauce.pipelines.runs import PipelineRun
from cauce.workspace import Workspace

FLOW = """
import time
from pathlib import Path

import cauce


@cauce.step
def table(n: int):
    import pandas as pd

    return pd.DataFrame({"i": range(n), "half": [i / 2 if i % 3 else None for i in range(n)]})


@cauce.step
def total(df) -> float:
    return float(df["i"].sum())


@cauce.step
def arrays(df):
    return df["i"].to_numpy() * 2


@cauce.step
def count_a(df) -> int:
    return len(df)


@cauce.step
def count_b(df) -> int:
    return 2 * len(df)


def meet(here: Path, there: Path) -> float:
    # Announce this step, then wait for the other one: only parallel steps both finish.
    here.touch()
    deadline = time.monotonic() + 60
    while not there.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{there.name} never started: the steps did not run in parallel")
        time.sleep(0.01)
    return time.time()


@cauce.step
def meet_a(folder: str) -> float:
    return meet(Path(folder) / "a", Path(folder) / "b")


@cauce.step
def meet_b(folder: str) -> float:
    return meet(Path(folder) / "b", Path(folder) / "a")


@cauce.step
def report(t: float, a, x: int, y: int) -> dict:
    return {"total": t, "last": int(a[-1]), "x": x, "y": y}


@cauce.step(timeout=0.3)
def stuck(df) -> int:
    time.sleep(10)
    return 0


@cauce.step
def after_stuck(v: int) -> int:
    return v


@cauce.pipeline
def flow(n: int = 10):
    df = table(n)
    return report(total(df), arrays(df), count_a(df), count_b(df))


@cauce.pipeline
def rendezvous(folder: str):
    return [meet_a(folder), meet_b(folder)]


@cauce.pipeline
def broken(n: int = 10):
    df = table(n)
    after_stuck(stuck(df))
    return total(df)
"""


def load(tmp_path: Path, name: str) -> object:
    path = tmp_path / "flows.py"
    if not path.exists():
        path.write_text(textwrap.dedent(FLOW))
    return load_pipeline(f"{path}:{name}")


def summary(run: PipelineRun) -> dict[str, tuple[str, str | None]]:
    return {
        n: (s.cache_key, s.output["sha256"] if s.output else None) for n, s in run.steps.items()
    }


def test_executors_are_registered_lazily() -> None:
    assert executors.names()[:2] == ["local", "process"]
    assert executors.executor_class("local").name == "local"


@pytest.mark.slow
def test_local_and_process_give_the_same_outputs_and_keys(
    workspace: Workspace, tmp_path: Path
) -> None:
    flow = load(tmp_path, "flow")
    local = flow.run(n=12, executor="local")  # type: ignore[attr-defined]
    assert local.succeeded, local.error
    process = flow.run(n=12, executor="process", cache=False, max_workers=2)  # type: ignore[attr-defined]
    assert process.succeeded, process.error
    assert process.executor == "process"
    assert summary(process) == summary(local)
    assert process.result() == local.result() == {"total": 66.0, "last": 22, "x": 12, "y": 24}
    assert process.steps["table"].stats == {
        **local.steps["table"].stats,  # type: ignore[dict-item]
        "duration_ms": process.steps["table"].duration_ms,
    }
    cached = flow.run(n=12, executor="process")  # type: ignore[attr-defined]
    assert all(s.cache_hit for s in cached.steps.values())


@pytest.mark.slow
def test_process_runs_independent_branches_in_parallel(
    workspace: Workspace, tmp_path: Path
) -> None:
    # meet_a and meet_b each wait for the other to start: run one after the other, they fail.
    rendezvous = load(tmp_path, "rendezvous")
    run = rendezvous.run(folder=str(tmp_path), executor="process", max_workers=2)  # type: ignore[attr-defined]
    assert run.succeeded, run.error
    assert (tmp_path / "a").exists() and (tmp_path / "b").exists()


@pytest.mark.slow
def test_process_timeout_and_failure_isolation(workspace: Workspace, tmp_path: Path) -> None:
    broken = load(tmp_path, "broken")
    run = broken.run(executor="process", max_workers=2)  # type: ignore[attr-defined]
    assert run.status == "FAILED"
    status = {n: s.status for n, s in run.steps.items()}
    assert status == {
        "table": "SUCCEEDED",
        "stuck": "FAILED",
        "after_stuck": "SKIPPED",
        "total": "SUCCEEDED",
    }
    assert run.steps["stuck"].error == "StepTimeout: step 'stuck' timed out after 0.3 s"
    assert run.result() == 45.0


WORKER = """
import cauce


@cauce.step
def train(ref: str) -> int:
    rows = len(cauce.data.load(ref))
    with cauce.start_run(experiment="from-a-worker") as run:
        cauce.log_metric("rows", rows)
    return rows


@cauce.pipeline
def trained(ref: str):
    return train(ref)
"""


@pytest.mark.slow
def test_a_process_worker_reaches_the_runners_store_or_server(
    workspace: Workspace, tmp_path: Path
) -> None:
    """What a step does through Cauce in a worker process (a dataset it loads, a run it starts)
    lands in the runner's workspace, through the same server for a remote one, and is linked."""
    import pandas as pd

    import cauce
    from cauce.lineage.graph import walk

    version = cauce.data.register("rows", pd.DataFrame({"a": [1, 2, 3]}))
    path = tmp_path / "worker_flow.py"
    path.write_text(textwrap.dedent(WORKER))
    run = load_pipeline(f"{path}:trained").run(ref=version.ref, executor="process", max_workers=1)
    assert run.succeeded, run.error
    assert run.result() == 3
    step_run = run.steps["train"].id
    graph = walk(workspace, "step_run", step_run, "both", max_depth=1)
    linked = {(e.src.kind, e.dst.kind, e.relation) for e in graph.edges}
    assert {("dataset_version", "step_run", "input"), ("step_run", "run", "started")} <= linked
    (started,) = [e.dst.id for e in graph.edges if e.relation == "started"]
    assert cauce.get_run(started).data.metrics["rows"] == 3
