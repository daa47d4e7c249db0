"""A metric's series downsampled in the store: its extremes kept, NaN a gap, a range whole
once small enough; on SQLite, PostgreSQL and through a server."""

from __future__ import annotations

import math

import pytest

import cauce
from cauce.errors import InvalidInput, NotFound
from cauce.store.schema import metrics
from cauce.tracking.series import metric_series, metric_steps
from cauce.workspace import Workspace
from remote import server_side


def _long_run(ws: Workspace, steps: int) -> str:
    """A run whose ``loss`` has ``steps`` values 1/(s+1), a spike of 9 at 70% of the way and a
    NaN at 80%."""
    with cauce.start_run(experiment="long") as run:
        cauce.log_metric("other", 1.0)
    run_id = run.info.run_id
    spike, gap = steps * 7 // 10, steps * 8 // 10
    rows = [
        {"run_id": run_id, "key": "loss", "value": 9.0 if s == spike else 0.0 if s == gap
         else 1.0 / (s + 1), "is_nan": s == gap, "step": s, "timestamp": s}
        for s in range(steps)
    ]  # fmt: skip
    with server_side(ws).store.write() as conn:
        conn.execute(metrics.insert(), rows)
    return run_id


def test_a_long_series_keeps_its_extremes_and_a_short_range_is_exact(
    seam_any_workspace: Workspace,
) -> None:
    run_id = _long_run(seam_any_workspace, 100_000)
    shown = metric_series(run_id, "loss", 1000)
    assert not shown.exact and shown.total == 100_000 and len(shown.steps) <= 1000
    assert shown.steps == sorted(shown.steps) and shown.steps[0] == 0
    assert 9.0 in shown.values and shown.values[0] == 1.0  # the spike and the first value
    assert min(v for v in shown.values if v is not None) == pytest.approx(1 / 100_000)
    zoomed = metric_series(run_id, "loss", 1000, 69_990, 70_010)
    assert zoomed.exact and zoomed.steps == list(range(69_990, 70_011))
    around_gap = metric_series(run_id, "loss", 1000, 79_999, 80_001)
    assert around_gap.values[1] is None  # a gap, not a number
    whole = metric_series(run_id, "other")
    assert (whole.steps, whole.values, whole.exact) == ([0], [1.0], True)


def test_bad_series_requests_name_the_problem(seam_any_workspace: Workspace) -> None:
    with cauce.start_run(experiment="e") as run:
        cauce.log_metric("m", 1.0)
    with pytest.raises(InvalidInput, match="points"):
        metric_series(run.info.run_id, "m", 1)
    with pytest.raises(NotFound):
        metric_series("0" * 32, "m")
    assert metric_series(run.info.run_id, "nothing").total == 0
    assert not math.isnan(metric_series(run.info.run_id, "m").values[0] or 0.0)


def test_a_runs_metric_steps_tell_a_score_from_a_history(seam_any_workspace: Workspace) -> None:
    with cauce.start_run(experiment="e") as run:
        cauce.log_metric("f1", 0.8)
        for step in range(3):
            cauce.log_metric("loss", 1 / (step + 1), step=step)
        for value in (0.5, 0.6):
            cauce.log_metric("accuracy", value)  # no step: both at step 0
    assert metric_steps(run.info.run_id) == {"f1": 1, "loss": 3, "accuracy": 1}
    with cauce.start_run(experiment="e") as quiet:
        pass
    assert metric_steps(quiet.info.run_id) == {}
    with pytest.raises(NotFound):
        metric_steps("0" * 32)
