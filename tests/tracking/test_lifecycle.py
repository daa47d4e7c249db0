"""Runs and experiments deleted, restored and renamed; metric values each with its own step and
time (what the MLflow API needs), local and through a server."""

from __future__ import annotations

import math

import pytest

import cauce
from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.tracking import experiments, runs
from cauce.tracking.search import search_runs
from cauce.workspace import Workspace
from remote import server_side


def test_a_run_is_deleted_restored_and_renamed_with_audit(workspace: Workspace) -> None:
    with cauce.start_run(experiment="churn", run_name="first") as run:
        pass
    runs.delete_run(run.run_id)
    assert runs.get_run(run.run_id).info.lifecycle_stage == "deleted"
    assert search_runs("churn") == []
    assert [r.info.run_id for r in search_runs("churn", lifecycle="deleted")] == [run.run_id]
    runs.restore_run(run.run_id)
    assert [r.info.run_id for r in search_runs("churn")] == [run.run_id]
    runs.rename_run(run.run_id, "baseline")
    assert runs.get_run(run.run_id).info.run_name == "baseline"
    actions = [e.action for e in audit.events(server_side(workspace), entity_id=run.run_id)]
    assert {"run.delete", "run.restore", "run.rename"} <= set(actions)
    with pytest.raises(NotFound):
        runs.delete_run("no-such-run")
    with pytest.raises(InvalidInput, match="run name"):
        runs.rename_run(run.run_id, "a/b")


def test_metric_values_keep_their_own_steps_and_times(workspace: Workspace) -> None:
    with cauce.start_run() as run:
        pass
    values = [("loss", 0.5, 1, 1000), ("loss", float("nan"), 2, 2000), ("acc", 0.9, None, None)]
    runs.log_metric_values(run.run_id, values)
    loss = runs.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.timestamp) for m in loss] == [(1, 1000), (2, 2000)]
    assert loss[0].value == 0.5 and math.isnan(loss[1].value)
    assert [m.value for m in runs.get_metric_history(run.run_id, "acc")] == [0.9]
    with pytest.raises(InvalidInput):
        runs.log_metric_values(run.run_id, [("bad key/../", 1.0, None, None)])


def test_an_experiment_has_tags_set_replaced_and_removed_with_audit(
    workspace: Workspace,
) -> None:
    made = experiments.create_experiment("churn", "churn models", tags={"team": "growth"})
    assert made.tags == {"team": "growth"}
    tagged = experiments.set_experiment_tags("churn", {"team": "risk", "project": "retention"})
    assert tagged.tags == {"team": "risk", "project": "retention"}
    assert experiments.delete_experiment_tag(made.experiment_id, "project").tags == {"team": "risk"}
    assert experiments.get_experiment("churn").tags == {"team": "risk"}
    experiments.create_experiment("fraud")
    listed = {e.name: e.tags for e in experiments.list_experiments()}
    assert listed["churn"] == {"team": "risk"} and listed["fraud"] == {}
    with pytest.raises(NotFound):
        experiments.delete_experiment_tag("churn", "project")
    with pytest.raises(NotFound):
        experiments.set_experiment_tags("ghost", {"team": "x"})
    with pytest.raises(InvalidInput):
        experiments.set_experiment_tags("churn", {"../up": "x"})
    assert experiments.get_experiment("churn").tags == {"team": "risk"}  # nothing half-written
    changes = [
        (e.action, e.before, e.after)
        for e in reversed(audit.events(server_side(workspace), entity_id=made.experiment_id))
        if e.action.startswith(("experiment.tag", "experiment.untag"))
    ]
    assert changes == [
        ("experiment.tag", None, {"team": "growth"}),
        ("experiment.tag", {"team": "growth"}, {"team": "risk", "project": "retention"}),
        ("experiment.untag", {"project": "retention"}, None),
    ]


def test_an_experiment_is_restored_and_renamed(workspace: Workspace) -> None:
    experiments.create_experiment("churn")
    experiments.create_experiment("taken")
    experiments.delete_experiment("churn")
    assert experiments.restore_experiment("churn").lifecycle_stage == "active"
    assert experiments.rename_experiment("churn", "churn-v2").name == "churn-v2"
    assert experiments.get_experiment("churn-v2").lifecycle_stage == "active"
    with pytest.raises(AlreadyExists):
        experiments.rename_experiment("churn-v2", "taken")
    with pytest.raises(NotFound):
        experiments.restore_experiment("ghost")
