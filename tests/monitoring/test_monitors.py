"""Monitors: specs applied idempotently, windows of production data judged against a reference.

Runs are driven with explicit times (``run_monitor(now=...)``) over datasets registered in the
test and records written by the real collector, so each test states what the window held.
``workspace`` and ``any_workspace`` run through a server too (tests/monitoring/conftest.py),
the agent's claims included; the agent itself needs the store (``local_workspace``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

import cauce
from builders import customers
from cauce.cli.main import app
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.monitoring.alerts import list_alerts
from cauce.monitoring.monitors import (
    claim_due,
    claim_due_monitors,
    get_monitor,
    history,
    list_monitors,
    run_monitor,
    run_values,
    runs,
)
from cauce.specs import apply
from cauce.store import now_ms
from cauce.store.schema import monitors
from cauce.workspace import Workspace
from remote import server_side
from served import CHURN_BLUE, record_requests
from stored import row_count, snapshot
from together import at_once

HOUR = 3_600_000
NOW = 1_800_000_000_000  # 2027-01-15, a fixed clock for the windows


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Monitor",
        "name": "churn-drift",
        "target": {"dataset": "production"},
        "reference": {"dataset": "training"},
        "signals": [
            {"data_drift": {"threshold": 0.1, "drift_share": 0.3}},
            {"data_quality": {"null_rate": 0.0, "out_of_bounds_rate": 0.05}},
        ],
    }
    body.update(overrides)
    return body


def setup(ws: Workspace, production: pd.DataFrame, **overrides: Any) -> None:
    cauce.data.register("training", customers(2000, contract=True), workspace=ws)
    cauce.data.register("production", production, workspace=ws, allow_schema_change=True)
    apply(spec(**overrides), workspace=ws)


def outcomes(values: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(v["signal"], v["feature"], v["metric"]): v for v in values}


# -- specs ------------------------------------------------------------------------------------


def test_apply_creates_then_is_unchanged_then_updates_and_audits(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    reference = customers(2000, contract=True)
    cauce.data.register("training", reference, workspace=any_workspace)
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "kind: Monitor\nname: churn-drift\ntarget: {dataset: production}\n"
        "reference: {dataset: training}\nsignals:\n  - data_drift: {threshold: 0.1}\n"
    )
    assert [a.outcome for a in apply(path)] == ["created"]
    assert [a.outcome for a in apply(path)] == ["unchanged"]
    path.write_text(path.read_text().replace("0.1", "0.2"))
    assert [a.outcome for a in apply(path)] == ["updated"]
    actions = [e.action for e in audit.events(any_workspace, entity_kind="monitor")]
    assert actions == ["monitor.update", "monitor.create"]
    [monitor] = list_monitors()
    assert monitor.name == "churn-drift" and monitor.enabled
    assert monitor.spec["signals"][0]["data_drift"]["threshold"] == 0.2
    # Defaults are filled in: the stored spec is the whole spec.
    assert monitor.spec["window"] == {"size": HOUR, "offset": 0}
    assert monitor.spec["cooldown"] == HOUR and monitor.next_run_at is None


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"signals": [{"data_shift": {}}]}, "signals.0.data_shift", "did you mean data_drift?"),
        ({"target": {"dataset": "a", "endpoint": "b"}}, "target", "exactly one of endpoint"),
        ({"schedule": "61 * * * *"}, "schedule", "not a cron expression"),
        (
            {"signals": [{"prediction_drift": {}}], "reference": {"model": "models:/churn/1"}},
            "Monitor",
            "prediction_drift needs an endpoint target",
        ),
        (
            {"signals": [{"data_drift": {"numerical": "wasserstein"}}]},
            "signals.0.data_drift.numerical",
            "normalized_wasserstein",
        ),
        (
            {"signals": [{"data_drift": {"numerical": "chi_squared"}}]},
            "signals.0.data_drift",
            "categorical columns only",
        ),
        (
            {
                "target": {"endpoint": "churn"},
                "signals": [
                    {"model_performance": {"metric": "auc", "min": 0.8, "labels": {"dataset": "l"}}}
                ],
            },
            "signals.0.model_performance.metric",
            "roc_auc",
        ),
        ({"reference": {"model": "churn@champion"}}, "reference", "models:/ URI"),
        ({"signals": []}, "signals", "at least 1"),
        ({"window": {"size": "0s"}}, "window.size", "positive"),
    ],
)
def test_bad_specs_raise_invalid_input_naming_the_field(
    workspace: Workspace, change: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        apply(spec(**change), workspace=workspace)
    assert caught.value.details["field"] == field
    assert field in str(caught.value) and words in str(caught.value)
    assert list_monitors() == []


def test_every_stored_duration_reads_back_as_the_milliseconds_it_is() -> None:
    from pydantic import BaseModel

    from cauce.monitoring.monitors import parse_spec, stored_spec
    from cauce.monitoring.specs import Window, from_store
    from cauce.validation import Duration

    webhook = {"url": "http://127.0.0.1:9/h", "timeout": "1500ms", "backoff": 2}
    trigger = {"pipeline": "flows/retrain.py:retraining", "backoff": "3m"}
    written = spec(
        window={"size": "90m", "offset": "15s"},
        cooldown="2h",
        on_alert=[{"webhook": webhook}, {"trigger": trigger}, {"log": None}],
    )
    parsed = parse_spec(written)
    assert (parsed.cooldown, parsed.window.size, parsed.on_alert[0].body.backoff) == (
        2 * HOUR,
        90 * 60_000,
        2000,
    )
    # Stored as milliseconds, read back as the same milliseconds (not as seconds).
    assert stored_spec(parsed.model_dump(mode="json")) == parsed

    # Found by type, not by name: a field added later, optional, nested or in a list.
    class Later(BaseModel):
        wait: Duration = 5
        maybe: Duration | None = None
        windows: list[Window] = []
        named: dict[str, Duration] = {}

    later = Later(wait="2s", maybe="1h", windows=[{"size": "1m"}], named={"a": "250ms"})
    assert later.wait == 2000 and later.windows[0].size == 60_000
    assert Later.model_validate(from_store(Later, later.model_dump(mode="json"))) == later


# -- runs -------------------------------------------------------------------------------------


def test_a_drifted_dataset_window_by_timestamp_raises_an_alert(any_workspace: Workspace) -> None:
    """Only rows with ``end - size < timestamp <= end`` count; the time column is no feature."""
    old = customers(1000, seed=1, contract=True).assign(ts=NOW - 2 * HOUR)  # before: normal
    new = customers(600, seed=2, shift=25.0, contract=True).assign(ts=NOW - HOUR // 2)
    later = customers(50, seed=3, contract=True).assign(ts=NOW + 1)  # after the window's end
    production = pd.concat([old, new, later], ignore_index=True)
    training = customers(2000, contract=True).assign(ts=NOW - 30 * 24 * HOUR)
    cauce.data.register("training", training, workspace=any_workspace)
    cauce.data.register("production", production, workspace=any_workspace)
    apply(spec(target={"dataset": "production", "timestamp": "ts"}), workspace=any_workspace)
    run = run_monitor("churn-drift", now=NOW)
    assert run.status == "alert" and run.rows == 600
    assert (run.window_start, run.window_end) == (NOW - HOUR, NOW)
    found = outcomes(run.values)
    assert {f for _, f, _ in found} == {"charges", "tenure", "contract", "*"}
    assert found["data_drift", "charges", "normalized_wasserstein"]["outcome"] == "breached"
    assert found["data_drift", "contract", "jensen_shannon"]["outcome"] == "breached"
    assert found["data_drift", "tenure", "normalized_wasserstein"]["outcome"] == "passed"
    share = found["data_drift", "*", "drifted_share"]
    assert share["value"] == pytest.approx(2 / 3) and share["outcome"] == "breached"
    assert sorted(share["details"]["drifted"]) == ["charges", "contract"]
    assert run.alert is not None and run.alert.state == "open"
    breached = {(b["feature"], b["metric"]) for b in run.alert.breaches}
    assert {("*", "drifted_share"), ("charges", "normalized_wasserstein")} <= breached
    # The window before, with the shift outside it, is clean.
    assert run_monitor("churn-drift", now=NOW - HOUR - 1).status == "ok"


def test_the_reference_profile_is_stored_once_and_reused(any_workspace: Workspace) -> None:
    setup(any_workspace, customers(500, seed=1, contract=True))
    first = run_monitor("churn-drift", now=NOW)
    second = run_monitor("churn-drift", now=NOW + HOUR)
    assert first.status == second.status == "ok"
    assert first.summary["profile_reused"] is False
    assert second.summary["profile_reused"] is True
    assert first.summary["reference"] == "training@1" and first.summary["reference_rows"] == 2000
    assert first.values == second.values  # the same window, the same reference: the same numbers
    assert row_count(server_side(any_workspace), "reference_profiles") == 1
    created = audit.events(any_workspace, action="reference_profile.create")
    assert len(created) == 1 and created[0].after["rows"] == 2000
    # Another binning is another profile.
    apply(spec(bins=10), workspace=any_workspace)
    assert run_monitor("churn-drift", now=NOW + 2 * HOUR).summary["profile_reused"] is False


def test_runs_values_and_history_are_a_time_series(any_workspace: Workspace) -> None:
    setup(any_workspace, customers(500, seed=1, contract=True))
    shares, done = [], []
    for i, shift in enumerate([0.0, 25.0, 0.0]):
        batch = customers(500, seed=10 + i, shift=shift, contract=True)
        cauce.data.register("production", batch, workspace=any_workspace)
        done.append(run_monitor("churn-drift", now=NOW + i * HOUR))
        shares.append(outcomes(done[-1].values)["data_drift", "*", "drifted_share"]["value"])
    series = history("churn-drift", signal="data_drift", feature="*")
    assert [v["at"] for v in series] == [NOW, NOW + HOUR, NOW + 2 * HOUR]
    assert [v["value"] for v in series] == pytest.approx(shares)
    assert [v["outcome"] for v in series] == ["passed", "breached", "passed"]
    assert [v["run_id"] for v in series] == [r.id for r in done]
    charges = history("churn-drift", feature="charges", metric="normalized_wasserstein")
    assert len(charges) == 3 and charges[1]["value"] > 0.5
    assert [v["at"] for v in history("churn-drift", limit=2)] == [NOW + 2 * HOUR] * 2
    latest = runs("churn-drift")
    assert [r.status for r in latest] == ["ok", "alert", "ok"]
    assert [r.id for r in latest] == [r.id for r in reversed(done)]
    stored = run_values(done[1].id)
    assert [{k: v[k] for k in ("signal", "feature", "metric", "outcome")} for v in stored] == [
        {k: v[k] for k in ("signal", "feature", "metric", "outcome")} for v in done[1].values
    ]
    assert [v["value"] for v in stored] == pytest.approx([v["value"] for v in done[1].values])
    assert get_monitor("churn-drift").last_run_at == NOW + 2 * HOUR
    monitor_runs = audit.events(any_workspace, action="monitor.run")
    assert [e.after["status"] for e in monitor_runs] == ["ok", "alert", "ok"]
    with pytest.raises(NotFound):
        runs("nope")


def test_a_model_reference_monitors_the_signature_columns_of_its_training_data(
    workspace: Workspace,
) -> None:
    from sklearn.linear_model import LogisticRegression

    table = customers(2000, contract=True).assign(churned=lambda f: (f["charges"] > 80).astype(int))
    version = cauce.data.register("training", table)
    features = table[["charges", "tenure"]]
    with cauce.start_run(experiment="churn"):
        cauce.log_input(version, context="training")
        model = LogisticRegression(max_iter=200).fit(features, table["churned"])
        cauce.log_model(model, "model", registered_model="churn", input_example=features.head(5))
    cauce.data.register("production", customers(400, seed=4, shift=25.0, contract=True))
    apply(spec(reference={"model": "models:/churn/1"}), workspace=workspace)
    run = run_monitor("churn-drift", now=NOW)
    assert run.summary["features"] == 2 and run.summary["reference"] == "training@1"
    assert {v["feature"] for v in run.values} == {"charges", "tenure", "*"}
    assert run.status == "alert"


def test_a_model_whose_run_logged_no_dataset_fails_the_run_with_the_reason(
    workspace: Workspace,
) -> None:
    from sklearn.linear_model import LogisticRegression

    features = customers(2000)[["charges", "tenure"]]
    with cauce.start_run(experiment="churn"):
        model = LogisticRegression().fit(features, features["tenure"] > 30)
        cauce.log_model(model, "model", registered_model="churn", input_example=features.head(5))
    cauce.data.register("production", customers(100, contract=True))
    apply(spec(reference={"model": "models:/churn/1"}), workspace=workspace)
    run = run_monitor("churn-drift", now=NOW)
    assert run.status == "failed" and "logged no input dataset" in (run.error or "")
    assert runs("churn-drift")[0].error == run.error


# -- edge cases -------------------------------------------------------------------------------


def test_an_empty_window_is_no_data_with_a_reason_and_no_alert(any_workspace: Workspace) -> None:
    production = customers(100, contract=True).assign(ts=NOW - 5 * HOUR)
    setup(any_workspace, production, target={"dataset": "production", "timestamp": "ts"})
    run = run_monitor("churn-drift", now=NOW)
    assert run.status == "no_data" and run.rows == 0 and run.alert is None
    assert run.summary["reason"] == "the window has 0 rows, fewer than min_rows 1"
    assert {v["signal"] for v in run.values} == {"data_drift", "data_quality"}
    for value in run_values(run.id):
        assert value["value"] is None and value["outcome"] == "not_computed"
        assert value["details"]["reason"] == run.summary["reason"]
    assert list_alerts() == []
    # The CLI says it once, not once per signal (the real clock's window is empty too).
    shown = CliRunner().invoke(app, ["monitors", "run", "churn-drift"])
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())  # the console may fold it at 80 columns
    assert said == f"Monitor churn-drift: no_data: {run.summary['reason']}"


def test_min_rows_makes_a_small_window_no_data(workspace: Workspace) -> None:
    setup(workspace, customers(20, contract=True), min_rows=50)
    run = run_monitor("churn-drift", now=NOW)
    assert run.status == "no_data" and run.rows == 20
    assert "fewer than min_rows 50" in run.summary["reason"]


def test_a_column_missing_from_production_breaches_null_rate(any_workspace: Workspace) -> None:
    setup(any_workspace, customers(500, seed=1, contract=True).drop(columns=["tenure"]))
    run = run_monitor("churn-drift", now=NOW)
    found = outcomes(run.values)
    tenure = found["data_drift", "tenure", "normalized_wasserstein"]
    assert tenure["value"] is None and tenure["outcome"] == "not_computed"
    assert tenure["details"]["reason"] == "the column is missing from the current window"
    null = found["data_quality", "tenure", "null_rate"]
    assert (null["value"], null["outcome"]) == (1.0, "breached")
    assert run.status == "alert" and run.alert is not None
    assert any(b["feature"] == "tenure" for b in run.alert.breaches)


def test_a_window_without_any_monitored_column_is_all_nulls_not_empty(
    workspace: Workspace,
) -> None:
    setup(workspace, pd.DataFrame({"something_else": np.arange(50)}))
    run = run_monitor("churn-drift", now=NOW)
    assert run.rows == 50 and run.status == "alert"
    found = outcomes(run.values)
    for feature in ("charges", "tenure", "contract"):
        assert found["data_quality", feature, "null_rate"]["value"] == 1.0
        reason = found["data_drift", feature, "normalized_wasserstein" if feature != "contract"
                       else "jensen_shannon"]["details"]["reason"]  # fmt: skip
        assert reason == "the column is missing from the current window"
    assert found["data_drift", "*", "drifted_share"]["outcome"] == "not_computed"


def test_all_null_and_constant_columns_and_unseen_categories(workspace: Workspace) -> None:
    reference = customers(500, contract=True).assign(flat=3.0, empty=np.nan)
    production = customers(200, seed=1, contract=True).assign(
        flat=3.0, empty=np.nan, charges=np.nan
    )
    production.loc[:9, "contract"] = "lifetime"  # never seen in the reference
    cauce.data.register("training", reference)
    cauce.data.register("production", production)
    apply(spec(), workspace=workspace)
    found = outcomes(run_monitor("churn-drift", now=NOW).values)
    assert found["data_drift", "flat", "normalized_wasserstein"]["value"] == 0.0
    empty = found["data_drift", "empty", "normalized_wasserstein"]
    assert empty["details"]["reason"] == "the reference has no values in this column"
    charges = found["data_drift", "charges", "normalized_wasserstein"]
    assert charges["details"]["reason"] == "the current window has no values in this column"
    assert found["data_quality", "charges", "null_rate"]["value"] == 1.0
    contract = found["data_drift", "contract", "jensen_shannon"]
    assert contract["value"] > 0 and contract["details"]["unseen_categories"] == ["lifetime"]
    oob = found["data_quality", "contract", "out_of_bounds_rate"]
    assert oob["value"] == pytest.approx(10 / 200) and oob["outcome"] == "passed"
    for value in found.values():  # never a NaN: JSON would not even hold it
        assert value["value"] is None or np.isfinite(value["value"])


def test_a_single_row_window_is_judged(workspace: Workspace) -> None:
    setup(workspace, customers(1, seed=5, contract=True))
    run = run_monitor("churn-drift", now=NOW)
    assert run.rows == 1 and run.status in ("ok", "alert")
    for value in run.values:
        assert value["outcome"] in ("passed", "breached")
        assert value["value"] is not None and np.isfinite(value["value"])


# -- endpoint targets and delayed labels ------------------------------------------------------


@pytest.fixture
def served(workspace: Workspace, tmp_path: Path) -> int:
    """Model churn v1 trained on ``training``, served as churn/blue; 200 requests collected a
    minute before the time returned (the real clock: collector files are named by it)."""
    from sklearn.linear_model import LogisticRegression

    table = customers(1000, contract=True).assign(churned=lambda f: (f["charges"] > 75).astype(int))
    version = cauce.data.register("training", table)
    features = table[["charges", "tenure"]]
    with cauce.start_run(experiment="churn"):
        cauce.log_input(version, context="training")
        model = LogisticRegression(max_iter=500).fit(features, table["churned"])
        cauce.log_model(model, "model", registered_model="churn", input_example=features.head(5))
    (tmp_path / "endpoint.yaml").write_text(CHURN_BLUE)
    apply(tmp_path / "endpoint.yaml")
    window = customers(200, seed=9)[["charges", "tenure"]]
    now = now_ms()
    predictions = [int(c > 75) for c in window["charges"]]
    record_requests(workspace, window.to_dict("records"), predictions, at=now - 60_000)
    return now


def performance(**labels: Any) -> dict[str, Any]:
    return {
        "target": {"endpoint": "churn"},
        "reference": {"model": "models:/churn/1"},
        "signals": [
            {"data_drift": {"threshold": 0.3}},  # 200 requests: noise reaches 0.1
            {
                "model_performance": {
                    "metric": "accuracy",
                    "min": 0.9,
                    "labels": {"dataset": "labels", "join_on": "request_id", "label": "churned"},
                    **labels,
                }
            },
        ],
    }


def test_labels_that_never_arrive_are_not_computed_with_the_count(
    workspace: Workspace, served: int
) -> None:
    cauce.data.register("labels", pd.DataFrame({"request_id": ["other-1"], "churned": [1]}))
    apply(spec(**performance()), workspace=workspace)
    run = run_monitor("churn-drift", now=served)
    assert run.rows == 200 and run.status == "ok"
    value = outcomes(run.values)["model_performance", "*", "accuracy"]
    assert value["value"] is None and value["outcome"] == "not_computed"
    assert value["details"]["reason"].startswith("0 of 200 predictions in the window have a label")
    assert (value["details"]["predictions"], value["details"]["labelled"]) == (200, 0)
    assert value["threshold"] == 0.9
    assert {v["feature"] for v in run.values if v["signal"] == "data_drift"} == {
        "charges",
        "tenure",
        "*",
    }


def test_labels_that_arrive_give_the_metric(workspace: Workspace, served: int) -> None:
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 120)  # labels for 120 of the 200 requests, half of them wrong
    cauce.data.register(
        "labels", pd.DataFrame({"request_id": [f"req-{i}" for i in range(120)], "churned": truth})
    )
    apply(spec(**performance(min_labels=100)), workspace=workspace)
    run = run_monitor("churn-drift", now=served)
    value = outcomes(run.values)["model_performance", "*", "accuracy"]
    window = customers(200, seed=9)
    predicted = (window["charges"].to_numpy()[:120] > 75).astype(int)
    assert value["value"] == pytest.approx(accuracy_score(truth, predicted))
    assert value["details"]["labelled"] == 120 and value["outcome"] == "breached"
    assert run.status == "alert"


def test_an_endpoint_window_with_no_requests_is_no_data(workspace: Workspace, served: int) -> None:
    cauce.data.register("labels", pd.DataFrame({"request_id": ["x"], "churned": [1]}))
    apply(spec(**performance()), workspace=workspace)
    run = run_monitor("churn-drift", now=served + 5 * HOUR)
    assert run.status == "no_data" and run.rows == 0 and run.alert is None
    assert run.summary["reason"] == "the window has 0 rows, fewer than min_rows 1"
    # A deployment that records nothing is the likely cause, and the reason says so.
    apply(CHURN_BLUE.replace("collect: {}\n", ""), workspace=workspace)
    deaf = run_monitor("churn-drift", now=served + 5 * HOUR).summary["reason"]
    assert deaf == (
        "the window has 0 rows, fewer than min_rows 1: deployment blue of endpoint churn "
        "records no requests (add collect: {requests: true} to its spec)"
    )


def test_without_the_collector_files_the_registered_records_are_read(
    workspace: Workspace, served: int
) -> None:
    """A monitor on another machine than the router (Kubernetes) has no collector files: it reads
    the versions the collector registered, and sees the same window."""
    import shutil

    cauce.data.register("labels", pd.DataFrame({"request_id": ["x"], "churned": [1]}))
    apply(spec(**performance()), workspace=workspace)
    local = run_monitor("churn-drift", now=served)
    assert {v.name for v in cauce.data.list_datasets()} >= {"churn.blue.model_inputs"}
    shutil.rmtree(workspace.settings.state_dir / "collector")
    shared = run_monitor("churn-drift", now=served)
    assert (shared.rows, shared.status) == (local.rows, local.status) == (200, "ok")
    assert [(v["feature"], v["value"]) for v in shared.values] == [
        (v["feature"], v["value"]) for v in local.values
    ]


# -- schedules and the agent ------------------------------------------------------------------


def test_claim_due_collapses_missed_slots_into_one_run(any_workspace: Workspace) -> None:
    setup(any_workspace, customers(200, seed=1, contract=True), schedule="0 * * * *")
    due = get_monitor("churn-drift").next_run_at
    assert due is not None and due % HOUR == 0
    assert claim_due(any_workspace, now=due - 1) == []
    late = due + 5 * HOUR + 123
    assert claim_due(any_workspace, now=late) == ["churn-drift"]
    assert claim_due(any_workspace, now=late) == []  # the five missed slots were one claim
    assert claim_due_monitors() == ()  # the server's clock: the next slot is still ahead
    assert get_monitor("churn-drift").next_run_at == due + 6 * HOUR


def test_two_claims_of_the_same_slot_only_one_wins(any_workspace: Workspace) -> None:
    setup(any_workspace, customers(200, seed=1, contract=True), schedule="*/10 * * * *")
    due = get_monitor("churn-drift").next_run_at
    assert due is not None
    claims = at_once([lambda: claim_due(any_workspace, now=due + 1)] * 4)
    assert sorted(map(len, claims)) == [0, 0, 0, 1]


def test_a_disabled_monitor_is_never_due(workspace: Workspace) -> None:
    setup(workspace, customers(200, seed=1, contract=True), schedule="0 * * * *", enabled=False)
    assert claim_due(workspace, now=NOW * 2) == []


@pytest.mark.slow
def test_cauce_agent_once_runs_a_due_monitor(local_workspace: Workspace) -> None:
    setup(local_workspace, customers(300, seed=2, shift=25.0, contract=True), schedule="0 * * * *")
    with local_workspace.store.write() as conn:  # the slot came an hour ago
        conn.execute(update(monitors).values(next_run_at=monitors.c.next_run_at - 2 * HOUR))
    result = subprocess.run(
        [sys.executable, "-m", "cauce.cli.main", "agent", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "monitor churn-drift: alert (300 rows)" in result.stdout
    [run] = runs("churn-drift")
    assert run.status == "alert"
    [event] = audit.events(local_workspace, action="monitor.run")
    assert event.actor == "agent"
    [alert] = list_alerts()
    assert alert.state == "open" and alert.monitor_run_id == run.id


# -- through a server -------------------------------------------------------------------------


def test_a_run_whose_parts_disagree_is_refused_naming_the_part_and_stores_nothing(
    workspace: Workspace,
) -> None:
    from cauce.monitoring.monitors import Findings, SignalValue, record_run

    setup(workspace, customers(200, seed=1, contract=True))
    value: SignalValue = {
        "signal": "data_drift",
        "feature": "charges",
        "metric": "normalized_wasserstein",
        "value": 0.5,
        "threshold": 0.1,
        "outcome": "breached",
        "details": {},
    }

    def findings(**changes: Any) -> Findings:
        body: dict[str, Any] = {
            "status": "alert",
            "started_at": NOW,
            "duration_ms": 3,
            "rows": 200,
            "summary": {},
            "values": [value],
            "breaches": [value],
        }
        return Findings(**{**body, **changes})

    before = snapshot(server_side(workspace))
    refused = [
        (findings(breaches=[]), InvalidInput, "findings.breaches"),
        (findings(breaches=[{**value, "feature": "tenure"}]), InvalidInput, "findings.breaches.0"),
        (findings(values=[{**value, "outcome": "bad"}]), InvalidInput, "findings.values.0.outcome"),
        (findings(status="failed", breaches=[]), InvalidInput, "findings.error"),
        (findings(rows=-1), InvalidInput, "findings.rows"),
        (findings(profile_id="nope"), NotFound, "findings.profile_id"),
        (findings(references=["nope"]), NotFound, "findings.references"),
    ]
    for bad, error, field in refused:
        with pytest.raises(error) as caught:
            record_run("churn-drift", bad)
        assert caught.value.details["field"] == field, field
    with pytest.raises(NotFound, match="monitor 'nope' does not exist"):
        record_run("nope", findings())
    assert snapshot(server_side(workspace)) == before

    run = record_run("churn-drift", findings(), actions=False)
    assert run.alert is not None and run.alert.state == "open" and run.alert.actions == []
    assert [r.id for r in runs("churn-drift")] == [run.id]
    assert run_values(run.id) == [{**value, "at": NOW, "run_id": run.id}]


def test_through_a_server_wait_runs_the_alerts_actions_on_this_side(
    remote_workspace: Workspace,
) -> None:
    """The queue's steps are operations: ``wait`` claims and runs the actions here."""
    from cauce.monitoring.alerts import get_alert

    on_alert = [{"log": {"level": "info"}}, {"log": {"level": "warning"}}]
    setup(remote_workspace, customers(300, seed=2, shift=25.0, contract=True), on_alert=on_alert)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.status == "alert" and run.alert is not None
    ran = get_alert(run.alert.id).actions
    assert [(a.status, a.attempts, a.result) for a in ran] == [
        ("succeeded", 1, {"logged": "info"}),
        ("succeeded", 1, {"logged": "warning"}),
    ]
    assert all(a.history[0].outcome == "succeeded" and a.claimed_by is None for a in ran)
    assert run.summary["window_dataset"] == "churn-drift.window@1"
    assert cauce.data.load("churn-drift.window@1").shape[0] == 300
