"""Every operation that writes several rows commits them in one transaction.

Each test makes the database refuse the operation's last write (a trigger that rejects inserts
into one table, as a constraint would) and checks that the store then holds none of the
operation's rows and no audit event: no reader could have seen half of it. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cauce
from cauce.data.suites import CheckSuite
from cauce.errors import BackendError, Conflict
from cauce.lineage import audit
from cauce.specs import apply
from cauce.tracking import runs
from cauce.workspace import Workspace
from stored import refusing_inserts, snapshot

RULES = CheckSuite.model_validate(
    {"kind": "CheckSuite", "name": "s", "checks": [{"not_null": {"column": "x"}}]}
)


def assert_refused(ws: Workspace, operation: Any, table: str, when: str | None = None) -> None:
    """``operation`` fails on the refused insert (into ``table``, those meeting ``when``) and
    leaves the store exactly as it was."""
    before = snapshot(ws)
    events = len(audit.events(ws, limit=10_000))
    with (
        refusing_inserts(ws, table, when),
        pytest.raises(BackendError, match="refused by the test"),
    ):
        operation()
    assert snapshot(ws) == before
    assert len(audit.events(ws, limit=10_000)) == events


def trained() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=20), "b": rng.normal(size=20)})
    return DecisionTreeClassifier(max_depth=2).fit(frame, frame["a"] > 0)


# -- data ------------------------------------------------------------------------------------


def test_promote_is_one_transaction(any_workspace: Workspace) -> None:
    raw = cauce.data.register("raw", pd.DataFrame({"x": [1.0, 2.0, None]}), layer="bronze")
    clean = kept_gold = None

    def with_transform() -> None:
        nonlocal clean
        clean = cauce.data.promote(raw.ref, RULES, name="clean", transform=lambda d: d.dropna())

    def without_transform() -> None:
        nonlocal kept_gold
        kept_gold = cauce.data.promote("kept@1", RULES, to_layer="gold", name="kept_gold")

    # The edge is the last write: the version, the check result and the audit events go too.
    assert_refused(any_workspace, with_transform, "lineage_edges")
    kept = cauce.data.register("kept", pd.DataFrame({"x": [1.0]}), layer="silver")
    assert_refused(any_workspace, without_transform, "lineage_edges")
    assert [v.name for v in cauce.data.list_datasets()] == ["kept", "raw"]
    assert cauce.data.validations(kept.ref) == []

    # The same operations with nothing refused: every part is there.
    with_transform()
    without_transform()
    assert clean is not None and kept_gold is not None
    assert cauce.data.validations(clean.version) == [clean.validation]
    assert cauce.data.validations(kept.ref) == [kept_gold.validation]
    actions = [e.action for e in audit.events(any_workspace)]
    assert actions.count("check_result.create") == 2
    assert actions.count("dataset_version.create") == 4


def test_a_promotion_refused_after_its_checks_stores_no_check_result(
    any_workspace: Workspace,
) -> None:
    raw = cauce.data.register("raw", pd.DataFrame({"x": [1.0, 2.0]}), layer="bronze")
    cauce.data.register("copy", pd.DataFrame({"x": [1.0, 2.0]}), layer="bronze")
    before = snapshot(any_workspace)
    # The suite passes; the content is already copy@1, in another layer: nothing is written.
    with pytest.raises(Conflict, match="copy@1 in layer bronze"):
        cauce.data.promote(raw.ref, RULES, to_layer="silver", name="copy")
    assert snapshot(any_workspace) == before


# -- tracking --------------------------------------------------------------------------------


def test_the_first_run_of_a_new_experiment_creates_it_in_its_transaction(
    any_workspace: Workspace,
) -> None:
    assert_refused(any_workspace, lambda: runs.create_run("fresh"), "runs")
    assert cauce.list_experiments() == []
    run = runs.create_run("fresh")
    assert [e.name for e in cauce.list_experiments()] == ["fresh"]
    created = audit.events(any_workspace, action="experiment.create")
    assert [e.entity_id for e in created] == [run.experiment_id]


def test_resuming_a_run_with_tags_is_one_transaction(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        pass

    def resume() -> None:
        cauce.start_run(run_id=run.run_id, tags={"resumed": "yes"})

    assert_refused(any_workspace, resume, "run_tags")
    assert runs.get_run(run.run_id).info.status == "FINISHED"
    resume()
    cauce.end_run()
    assert runs.get_run(run.run_id).data.tags == {"resumed": "yes"}


def test_log_artifact_and_log_model_are_one_transaction(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello")
    model = trained()
    with cauce.start_run() as run:
        assert_refused(any_workspace, lambda: cauce.log_artifact(note), "lineage_edges")
        # The version is the last write: the run's files and their edges go too.
        assert_refused(
            any_workspace,
            lambda: cauce.log_model(model, "model", registered_model="churn"),
            "model_versions",
        )
        assert cauce.list_artifacts(run.run_id) == []
        version = cauce.log_model(model, "model", registered_model="churn")
    assert version.version == 1
    assert {a.path for a in cauce.list_artifacts(run.run_id)} == {
        f"model/{name}" for name in version.files
    }


# -- registry --------------------------------------------------------------------------------


def test_register_is_one_transaction(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        logged = cauce.log_model(trained(), "model")
    # The lineage edges come after the model, the version and their audit events.
    assert_refused(
        any_workspace, lambda: cauce.models.register(logged.uri, "churn"), "lineage_edges"
    )
    assert cauce.models.list_models() == []
    version = cauce.models.register(logged.uri, "churn")
    assert (version.version, version.run_id) == (1, run.run_id)


# -- pipelines -------------------------------------------------------------------------------


def test_a_step_run_is_one_transaction_and_the_pipeline_run_records_the_failure(
    any_workspace: Workspace,
) -> None:
    @cauce.step
    def numbers(n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": range(n)})

    @cauce.pipeline
    def tiny(n: int = 3):  # type: ignore[no-untyped-def]
        return numbers(n)

    from cauce.pipelines.runs import get_pipeline_run, list_pipeline_runs

    # A pipeline run records its progress as it goes (its start, then each step run): a step
    # run whose edges are refused leaves no row of its own, and the run ends FAILED.
    with refusing_inserts(any_workspace, "lineage_edges"), pytest.raises(BackendError):
        tiny.run(n=3)
    (failed,) = list_pipeline_runs("tiny")
    assert failed.status == "FAILED" and "refused by the test" in (failed.error or "")
    assert get_pipeline_run(failed.id).steps == {}
    assert audit.events(any_workspace, action="step_run.end") == []
    assert tiny.run(n=3).succeeded


# -- monitoring ------------------------------------------------------------------------------


def test_a_monitor_run_and_the_window_it_keeps_are_one_transaction(
    any_workspace: Workspace,
) -> None:
    from cauce.lineage.graph import walk
    from cauce.monitoring.monitors import run_monitor

    hour, now = 3_600_000, 1_800_000_000_000
    rng = np.random.default_rng(0)

    def rows(n: int, shift: float, at: int) -> pd.DataFrame:
        return pd.DataFrame({"charges": rng.normal(70 + shift, 20, n), "ts": at})

    cauce.data.register("training", rows(1000, 0.0, now - 30 * 24 * hour))
    production = pd.concat([rows(500, 0.0, now - 2 * hour), rows(500, 25.0, now - hour // 2)])
    cauce.data.register("production", production)
    apply(
        workspace=any_workspace,
        source={
            "kind": "Monitor",
            "name": "drift",
            "target": {"dataset": "production", "timestamp": "ts"},
            "reference": {"dataset": "training"},
            "signals": [{"data_drift": {"threshold": 0.3}}],
        },
    )
    assert run_monitor("drift", now=now - hour - 1).status == "ok"  # the reference profile

    # The window is written first, the signal values after it: refused, neither stays.
    assert_refused(any_workspace, lambda: run_monitor("drift", now=now), "signal_results")
    assert "drift.window" not in {v.name for v in cauce.data.list_datasets()}

    run = run_monitor("drift", now=now)
    assert run.status == "alert" and run.summary["window_dataset"] == "drift.window@1"
    window = cauce.data.get_version("drift.window@1")
    graph = walk(any_workspace, "monitor_run", run.id, "upstream")
    assert ("dataset_version", window.id, "current") in {
        (e.src.kind, e.src.id, e.relation) for e in graph.edges
    }


def test_a_monitor_run_its_alerts_and_the_actions_it_queues_are_one_transaction(
    any_workspace: Workspace,
) -> None:
    from cauce.monitoring.alerts import get_alert, list_alerts
    from cauce.monitoring.monitors import run_monitor, runs

    hour, now = 3_600_000, 1_800_000_000_000
    rng = np.random.default_rng(1)

    def rows(n: int, shift: float, at: int) -> pd.DataFrame:
        return pd.DataFrame({"charges": rng.normal(70 + shift, 20, n), "ts": at})

    cauce.data.register("training", rows(1000, 0.0, now - 30 * 24 * hour))
    production = pd.concat([rows(500, 0.0, now - 2 * hour), rows(500, 25.0, now - hour // 2)])
    cauce.data.register("production", production)
    apply(
        workspace=any_workspace,
        source={
            "kind": "Monitor",
            "name": "drift",
            "target": {"dataset": "production", "timestamp": "ts"},
            "reference": {"dataset": "training"},
            "signals": [{"data_drift": {"threshold": 0.3}}],
            "on_alert": [{"log": {"level": "info"}}, {"log": {"level": "warning"}}],
        },
    )
    assert run_monitor("drift", now=now - hour - 1).status == "ok"  # the reference profile

    # The alert's pending action runs are the run's last rows: refused, nothing of the run
    # stays (no run, no values, no kept window, no alert, no audit event).
    assert_refused(any_workspace, lambda: run_monitor("drift", now=now), "action_runs")
    assert list_alerts() == [] and len(runs("drift")) == 1
    alerting = run_monitor("drift", now=now)
    assert alerting.status == "alert" and alerting.alert is not None
    assert [a.status for a in get_alert(alerting.alert.id).actions] == ["pending", "pending"]

    # A clean run resolves the open alert in its own transaction: refused, the alert stays open.
    cauce.data.register("production", pd.concat([production, rows(500, 0.0, now + 2 * hour)]))

    def clean() -> str:
        return run_monitor("drift", now=now + 2 * hour + 1).status

    resolved_by = "NEW.action = 'alert.resolve'"
    assert_refused(any_workspace, clean, "audit_events", when=resolved_by)
    assert get_alert(alerting.alert.id).state == "open" and len(runs("drift")) == 2
    assert clean() == "ok"
    assert get_alert(alerting.alert.id).state == "resolved"
