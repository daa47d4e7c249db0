"""Sweeps: an Optuna study whose trials are child runs of one parent run."""

from __future__ import annotations

import math
from typing import Any

import pytest

import cauce
from cauce.errors import InvalidInput
from cauce.tracking.entities import Run
from cauce.workspace import Workspace

SPACE: dict[str, Any] = {
    "depth": (2, 12),
    "alpha": (0.0, 1.0),
    "lr": (1e-4, 1e-1, "log"),
    "kernel": ["rbf", "linear", "poly"],
}
KERNEL_BONUS = {"rbf": 0.3, "linear": 0.2, "poly": 0.0}


def score(params: dict[str, Any]) -> float:
    """A deterministic objective over every kind of domain."""
    return (
        -((params["depth"] - 7) ** 2) / 25
        - (params["alpha"] - 0.3) ** 2
        - abs(math.log10(params["lr"]) + 2) / 3
        + KERNEL_BONUS[params["kernel"]]
    )


def children(parent_run_id: str) -> list[Run]:
    return cauce.search_runs(filter=f"attributes.parent_run_id = '{parent_run_id}'")


def test_sweep_tracks_each_trial_as_a_child_run(any_workspace: Workspace) -> None:
    def objective(params: dict[str, Any]) -> float:
        value = score(params)
        cauce.log_metric("penalty", -value)  # goes to the trial's own run
        return value

    result = cauce.sweep(objective, SPACE, n_trials=8, experiment="tuning", seed=0)

    parent = cauce.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "sweep"
    trials = children(result.parent_run_id)
    assert len(trials) == result.n_trials == 8 and result.n_failed == 0
    assert {t.info.run_name for t in trials} == {f"trial-{i}" for i in range(8)}
    for trial in trials:
        assert trial.info.status == "FINISHED"
        assert trial.info.experiment_id == parent.info.experiment_id
        assert set(trial.data.params) == set(SPACE)
        depth, alpha, lr = (trial.data.params[k] for k in ("depth", "alpha", "lr"))
        assert depth.isdigit() and 2 <= int(depth) <= 12
        assert 0.0 <= float(alpha) <= 1.0 and 1e-4 <= float(lr) <= 1e-1
        assert trial.data.params["kernel"] in SPACE["kernel"]
        assert trial.data.metrics["penalty"] == -trial.data.metrics["objective"]
        assert trial.data.tags["sweep.trial"] == trial.info.run_name.removeprefix("trial-")

    best = max(trials, key=lambda t: t.data.metrics["objective"])
    assert result.best_run_id == best.info.run_id
    assert result.best_value == best.data.metrics["objective"]
    assert {k: str(v) for k, v in result.best_params.items()} == best.data.params
    assert result.best_value == pytest.approx(score(result.best_params))
    assert isinstance(result.best_params["depth"], int)
    assert parent.data.metrics == {"best.objective": result.best_value}
    assert parent.data.params == {f"best.{k}": v for k, v in best.data.params.items()}
    assert cauce.get_experiment("tuning").experiment_id == parent.info.experiment_id


def test_minimize_inside_an_active_run_keeps_that_run_open(workspace: Workspace) -> None:
    with cauce.start_run(experiment="tuning", run_name="outer") as outer:
        result = cauce.sweep(
            lambda p: (p["x"] - 3) ** 2,
            {"x": (-10, 10)},
            n_trials=6,
            direction="minimize",
            metric="sq err",
            seed=1,
        )
        assert result.parent_run_id == outer.run_id
        assert cauce.active_run() is outer
        assert outer.info.status == "RUNNING"
    trials = children(outer.run_id)
    assert len(trials) == 6
    assert result.best_value == min(t.data.metrics["sq err"] for t in trials)
    assert outer.data.metrics["best.sq err"] == result.best_value


def test_a_failing_trial_is_recorded_failed_and_the_sweep_goes_on(workspace: Workspace) -> None:
    calls = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(params)
        if len(calls) in (2, 4):
            raise RuntimeError(f"diverged on call {len(calls)}")
        if len(calls) == 5:
            return float("nan")
        return params["x"]

    result = cauce.sweep(objective, {"x": (0.0, 1.0)}, n_trials=6, seed=2)
    assert len(calls) == 6
    assert (result.n_trials, result.n_failed) == (6, 3)
    trials = {t.info.run_name: t for t in children(result.parent_run_id)}
    assert len(trials) == 6
    failed = {name for name, t in trials.items() if t.info.status == "FAILED"}
    assert failed == {"trial-1", "trial-3", "trial-4"}
    assert "RuntimeError: diverged on call 2" in (trials["trial-1"].info.error or "")
    assert "NaN" in (trials["trial-4"].info.error or "")
    assert "objective" not in trials["trial-1"].data.metrics
    assert cauce.get_run(result.parent_run_id).info.status == "FINISHED"
    finished = [t for t in trials.values() if t.info.status == "FINISHED"]
    assert result.best_value == max(t.data.metrics["objective"] for t in finished)
    assert result.best_run_id in {t.info.run_id for t in finished}


def test_when_every_trial_fails_the_sweep_fails(workspace: Workspace) -> None:
    def objective(params: dict[str, Any]) -> float:
        raise ValueError("broken")

    with pytest.raises(InvalidInput, match="every one of the 3 trials failed"):
        cauce.sweep(objective, {"x": ["a", "b"]}, n_trials=3, run_name="doomed")
    (parent,) = cauce.search_runs(filter="run_name = 'doomed'")
    assert parent.info.status == "FAILED"
    assert [t.info.status for t in children(parent.info.run_id)] == ["FAILED"] * 3
    assert cauce.active_run() is None


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "empty"),
        ([("x", (0, 1))], "must be a mapping"),
        ({"x": []}, "list of choices is empty"),
        ({"x": [{"a": 1}, "b"]}, "is not None, a bool, a number or a string"),
        ({"x": [[1, 2]]}, "is not None, a bool, a number or a string"),
        ({"x": (1,)}, "is not a domain"),
        ({"x": (1, 2, "log", 4)}, "is not a domain"),
        ({"x": "0..1"}, "is not a domain"),
        ({"x": {"low": 0, "high": 1}}, "is not a domain"),
        ({"x": ("a", "b")}, "is not a domain"),
        ({"x": (5, 1)}, "must be below high"),
        ({"x": (1.0, 1.0)}, "must be below high"),
        ({"x": (0.0, 1.0, "cubic")}, "'log' or 'linear'"),
        ({"x": (True, False)}, "list [True, False]"),
        ({"x": (0.0, 1.0, "log")}, "log scale needs a low bound above 0"),
        ({"x": (-1, 10, "log")}, "log scale needs a low bound above 0"),
        ({"x": (0.0, math.inf)}, "finite"),
        ({"x": (math.nan, 1.0)}, "finite"),
        ({"x": (0, 1), "bad key!": (0, 1)}, "sweep parameter 'bad key!'"),
    ],
)
def test_an_invalid_space_is_invalid_input_before_any_run(
    workspace: Workspace, space: Any, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        cauce.sweep(lambda p: 0.0, space, n_trials=2)
    assert message in str(caught.value)
    assert cauce.search_runs() == []


def test_invalid_arguments_are_invalid_input(workspace: Workspace) -> None:
    for kwargs, message in (
        ({"n_trials": 0}, "n_trials"),
        ({"n_trials": 2.5}, "n_trials"),
        ({"direction": "up"}, "direction"),
        ({"metric": ""}, "sweep metric"),
    ):
        with pytest.raises(InvalidInput, match=message):
            cauce.sweep(lambda p: 0.0, {"x": (0, 1)}, **kwargs)
    assert cauce.search_runs() == []
