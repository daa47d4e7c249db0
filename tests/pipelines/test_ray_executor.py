"""The Ray executor, on a local Ray: the same outputs and cache keys as the local executor."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cauce.pipelines.loading import load_pipeline
from cauce.pipelines.runs import PipelineRun
from cauce.workspace import Workspace
from optional import need

need("ray", extra="ray")

FLOW = """
import cauce


@cauce.step
def table(n: int):
    import pandas as pd

    return pd.DataFrame({"i": range(n), "half": [i / 2 if i % 3 else None for i in range(n)]})


@cauce.step
def total(df) -> float:
    return float(df["i"].sum())


@cauce.step
def doubled(df):
    return df["i"].to_numpy() * 2


@cauce.step(retries=1, retry_backoff=0.01)
def fails(df) -> int:
    raise ValueError("no good")


@cauce.step
def after(v: int) -> int:
    return v


@cauce.step
def report(t: float, a) -> dict:
    return {"total": t, "last": int(a[-1])}


@cauce.pipeline
def flow(n: int = 10):
    df = table(n)
    return report(total(df), doubled(df))


@cauce.pipeline
def broken(n: int = 10):
    df = table(n)
    after(fails(df))
    return total(df)
"""


def summary(run: PipelineRun) -> dict[str, tuple[str, str | None]]:
    return {
        n: (s.cache_key, s.output["sha256"] if s.output else None) for n, s in run.steps.items()
    }


@pytest.mark.slow
def test_ray_gives_the_local_outputs_keys_and_failures(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "flows.py"
    path.write_text(textwrap.dedent(FLOW))
    flow = load_pipeline(f"{path}:flow")
    local = flow.run(n=12, executor="local")
    assert local.succeeded, local.error
    on_ray = flow.run(n=12, executor="ray", cache=False, max_workers=2)
    assert on_ray.succeeded, on_ray.error
    assert on_ray.executor == "ray"
    assert summary(on_ray) == summary(local)
    assert on_ray.result() == local.result() == {"total": 66.0, "last": 22}
    assert all(s.cache_hit for s in flow.run(n=12, executor="ray").steps.values())

    broken = load_pipeline(f"{path}:broken").run(executor="ray", max_workers=2)
    assert broken.status == "FAILED"
    steps = broken.steps
    assert steps["fails"].status == "FAILED" and steps["fails"].attempts == 2
    assert "ValueError: no good" in (steps["fails"].error or "")
    assert steps["after"].status == "SKIPPED"
    assert steps["total"].status == "SUCCEEDED"
