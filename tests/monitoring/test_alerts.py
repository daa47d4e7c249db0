"""Alerts and their actions: cooldown, resolution, webhooks against a real server, pipelines.

Webhooks go to a small ``http.server`` on 127.0.0.1 that answers with the status codes a test
scripts; trigger actions run real pipeline files written in the test's folder. A monitor run
queues the actions; ``wait=True`` runs them in the foreground, as ``monitors run --wait`` does.
The queue itself (claims, leases, agents) is tested in tests/automation/test_action_queue.py.
Alerts' states, filters and queued actions are read through a server too (``any_workspace``);
running the actions (``wait``) needs the store (``store_workspace``, ``local_workspace``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import cauce
from builders import customers, drift_monitor
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.monitoring.alerts import get_alert, list_alerts
from cauce.monitoring.monitors import run_monitor, runs
from cauce.pipelines.runs import get_pipeline_run
from cauce.specs import apply
from cauce.workspace import Workspace
from clitools import assert_one_line_error
from clitools import cauce as cauce_cli
from webhooks import Hook

HOUR = 3_600_000
NOW = 1_800_000_000_000


def monitor(ws: Workspace, on_alert: list[dict[str, Any]] | None = None, **extra: Any) -> None:
    apply(drift_monitor(on_alert, **extra), workspace=ws)


def production(ws: Workspace, drifted: bool, seed: int = 1) -> None:
    """A new newest version of ``production``: drifted (charges +25) or like the training data."""
    cauce.data.register("production", customers(500, seed, 25.0 if drifted else 0.0), workspace=ws)


@pytest.fixture
def watched(store_workspace: Workspace) -> Workspace:
    cauce.data.register("training", customers(1000), workspace=store_workspace)
    return store_workspace


def test_alert_states_and_queued_actions(any_workspace: Workspace, hook: Hook) -> None:
    """Raised, suppressed within the cooldown, resolved by a clean run; actions queued."""
    cauce.data.register("training", customers(1000))
    monitor(any_workspace, [{"webhook": {"url": hook.url}}, {"log": None}], cooldown="1h")
    production(any_workspace, drifted=True)
    first = run_monitor("churn-drift", now=NOW)
    assert first.alert is not None and first.alert.state == "open"
    assert [(a.action, a.status, a.attempts) for a in first.alert.actions] == [
        ("webhook", "pending", 0),
        ("log", "pending", 0),
    ]
    assert [a.idempotency_key for a in first.alert.actions] == [
        f"{first.alert.id}.0",
        f"{first.alert.id}.1",
    ]
    second = run_monitor("churn-drift", now=NOW + HOUR // 2)
    assert second.alert is not None and second.alert.state == "suppressed"
    assert second.alert.actions == [] and hook.received == []
    production(any_workspace, drifted=False)
    assert run_monitor("churn-drift", now=NOW + HOUR).alert is None
    shown = get_alert(first.alert.id[:10])
    assert (shown.id, shown.state, shown.resolved_at) == (first.alert.id, "resolved", NOW + HOUR)
    assert shown.breaches == first.alert.breaches and shown.actions == first.alert.actions
    assert [a.id for a in list_alerts()] == [second.alert.id, first.alert.id]
    assert [a.id for a in list_alerts(state="suppressed")] == [second.alert.id]
    assert list_alerts(monitor="other") == [] and len(list_alerts(limit=1)) == 1
    with pytest.raises(InvalidInput) as caught:
        list_alerts(state="closed")
    assert caught.value.details["field"] == "state"
    with pytest.raises(NotFound, match="'zzzz' does not exist"):
        get_alert("zzzz")
    actions = [e.action for e in audit.events(any_workspace, entity_kind="alert")]
    assert sorted(actions) == sorted(
        ["alert.open", "alert.suppressed", "alert.resolve", "action.webhook", "action.log"]
    )


def test_cooldown_suppression_and_resolution(watched: Workspace, hook: Hook) -> None:
    monitor(watched, [{"webhook": {"url": hook.url}}], cooldown="1h")
    production(watched, drifted=True)
    first = run_monitor("churn-drift", now=NOW, wait=True)
    assert first.status == "alert" and first.alert is not None
    alert = first.alert
    assert alert.state == "open" and alert.monitor_run_id == first.id
    charges = next(b for b in alert.breaches if b["feature"] == "charges")
    assert charges["value"] > 0.2 and charges["threshold"] == 0.2
    assert charges["metric"] == "normalized_wasserstein"
    assert "charges normalized_wasserstein" in alert.reason
    assert [a.status for a in alert.actions] == ["succeeded"] and len(hook.received) == 1

    # The same incident half an hour later: stored, visible, and no action.
    second = run_monitor("churn-drift", now=NOW + HOUR // 2)
    assert second.alert is not None and second.alert.state == "suppressed"
    assert second.alert.actions == [] and len(hook.received) == 1
    assert "within the cooldown" in get_alert(second.alert.id).reason

    # After the cooldown a new alert starts the actions again.
    third = run_monitor("churn-drift", now=NOW + 2 * HOUR, wait=True)
    assert third.alert is not None and third.alert.state == "open"
    assert len(hook.received) == 2

    # A clean run resolves every open alert.
    production(watched, drifted=False)
    clean = run_monitor("churn-drift", now=NOW + 3 * HOUR)
    assert clean.status == "ok" and clean.alert is None
    states = {a.id: a.state for a in list_alerts(monitor="churn-drift")}
    assert states == {
        alert.id: "resolved",
        second.alert.id: "suppressed",
        third.alert.id: "resolved",
    }
    assert get_alert(alert.id).resolved_at == NOW + 3 * HOUR
    assert [a.id for a in list_alerts(state="resolved")] == [third.alert.id, alert.id]
    actions = [e.action for e in audit.events(watched, entity_kind="alert")]
    assert sorted(actions) == sorted(
        ["alert.open", "alert.suppressed", "alert.open"]
        + ["action.webhook"] * 6  # pending, running, succeeded: twice
        + ["alert.resolve"] * 2
    )


def test_a_flapping_signal_within_the_cooldown_is_one_incident(
    watched: Workspace, hook: Hook
) -> None:
    monitor(watched, [{"webhook": {"url": hook.url}}], cooldown="1h")
    production(watched, drifted=True)
    first = run_monitor("churn-drift", now=NOW, wait=True)
    production(watched, drifted=False)
    assert run_monitor("churn-drift", now=NOW + HOUR // 4).status == "ok"  # resolves it
    production(watched, drifted=True, seed=2)
    again = run_monitor("churn-drift", now=NOW + HOUR // 2)
    assert first.alert is not None and get_alert(first.alert.id).state == "resolved"
    assert again.alert is not None and again.alert.state == "suppressed"
    assert again.alert.actions == [] and len(hook.received) == 1
    assert f"within the cooldown of {first.alert.id}" in again.alert.reason


def test_webhook_receives_the_alert_as_json(watched: Workspace, hook: Hook) -> None:
    monitor(watched, [{"webhook": {"url": hook.url, "headers": {"X-Token": "t0k"}}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [request] = hook.received
    body = request["body"]
    assert body["alert_id"] == run.alert.id and body["monitor"] == "churn-drift"
    assert body["monitor_run_id"] == run.id and body["at"] == NOW
    assert body["reason"] == run.alert.reason and body["breaches"] == run.alert.breaches
    assert request["headers"]["X-Token"] == "t0k"
    [action] = run.alert.actions
    assert request["headers"]["Idempotency-Key"] == action.idempotency_key == f"{run.alert.id}.0"
    assert (action.action, action.target, action.attempts) == ("webhook", hook.url, 1)
    assert action.result == {"status_code": 200}
    events = audit.events(watched, action="action.webhook")
    assert [e.after["status"] for e in reversed(events)] == ["pending", "running", "succeeded"]
    assert {e.entity_id for e in events} == {run.alert.id}
    assert events[0].after["reason"] == run.alert.reason
    assert events[0].after["action_run_id"] == action.id


def test_webhook_retries_5xx_then_succeeds(watched: Workspace, hook: Hook) -> None:
    hook.codes = [500, 500, 200]
    monitor(watched, [{"webhook": {"url": hook.url, "retries": 3, "backoff": "100ms"}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [action] = run.alert.actions
    assert (action.status, action.attempts, action.error) == ("succeeded", 3, None)
    assert len(hook.received) == 3
    # Each try is an attempt of its own, and the retries wait 100 ms, then 200 ms.
    assert [(a.number, a.outcome, a.error) for a in action.history] == [
        (1, "failed", "answered 500"),
        (2, "failed", "answered 500"),
        (3, "succeeded", None),
    ]
    first, second, third = action.history
    assert first.ended_at is not None and second.ended_at is not None
    assert second.started_at - first.ended_at >= 100
    assert third.started_at - second.ended_at >= 200
    keys = {r["headers"]["Idempotency-Key"] for r in hook.received}
    assert keys == {action.idempotency_key}


def test_webhook_that_always_fails_is_failed_after_every_retry(
    watched: Workspace, hook: Hook
) -> None:
    hook.codes = [500]
    monitor(watched, [{"webhook": {"url": hook.url, "retries": 2}}, {"log": None}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    webhook, logged = run.alert.actions
    assert (webhook.status, webhook.attempts) == ("failed", 3) and len(hook.received) == 3
    assert webhook.error == f"webhook {hook.url} failed after 3 attempts: answered 500"
    assert logged.status == "succeeded"  # one failing action does not stop the next
    stored = get_alert(run.alert.id).actions
    assert [(a.action, a.status, a.error) for a in stored] == [
        ("webhook", "failed", webhook.error),
        ("log", "succeeded", None),
    ]
    assert runs("churn-drift")[0].id == run.id and runs("churn-drift")[0].status == "alert"
    event = audit.events(watched, action="action.webhook")[0]  # the last change
    assert event.after["error"] == webhook.error and event.after["status"] == "failed"
    retried = [
        e for e in audit.events(watched, action="action.webhook") if e.after.get("attempt") == 1
    ]
    assert [e.after["status"] for e in reversed(retried)] == ["running", "pending"]


def test_wait_runs_the_actions_in_order_each_to_its_end(watched: Workspace, hook: Hook) -> None:
    hook.codes = [503, 200]
    webhook = {"webhook": {"url": hook.url, "retries": 1, "backoff": "300ms"}}
    monitor(watched, [webhook, {"log": {"level": "info"}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    sent, logged = run.alert.actions
    assert [a.outcome for a in sent.history] == ["failed", "succeeded"]
    # The log waited for the webhook's retry, rather than run during its backoff.
    assert sent.history[-1].ended_at is not None
    assert logged.history[0].started_at >= sent.history[-1].ended_at


def test_webhook_4xx_fails_without_retries(watched: Workspace, hook: Hook) -> None:
    hook.codes = [404]
    monitor(watched, [{"webhook": {"url": hook.url, "retries": 3}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [action] = run.alert.actions
    assert (action.status, action.attempts) == ("failed", 1) and len(hook.received) == 1
    assert action.error == f"webhook {hook.url} answered 404"


def test_webhook_to_a_closed_port_fails_with_the_transport_error(
    local_workspace: Workspace,
) -> None:
    cauce.data.register("training", customers(1000))
    closed = Hook()
    closed.close()  # nothing listens there any more
    monitor(local_workspace, [{"webhook": {"url": closed.url, "retries": 0}}])
    production(local_workspace, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [action] = run.alert.actions
    assert action.status == "failed" and "ConnectError" in (action.error or "")


def test_no_actions_stores_the_alert_and_starts_nothing(watched: Workspace, hook: Hook) -> None:
    monitor(watched, [{"webhook": {"url": hook.url}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, actions=False, wait=True)
    assert run.alert is not None and run.alert.state == "open" and run.alert.actions == []
    assert hook.received == [] and get_alert(run.alert.id).actions == []


RETRAIN = """
import cauce


@cauce.step
def retrain(alert_id: str, rows: int) -> str:
    if rows < 0:
        raise RuntimeError("no rows to train on")
    return alert_id


@cauce.pipeline
def training(alert_id: str = "", rows: int = 10):
    return retrain(alert_id, rows)
"""


def test_trigger_runs_the_pipeline_with_the_alert_id(watched: Workspace, tmp_path: Path) -> None:
    (tmp_path / "retrain.py").write_text(textwrap.dedent(RETRAIN))
    target = f"{tmp_path / 'retrain.py'}:training"
    monitor(watched, [{"trigger": {"pipeline": target, "params": {"rows": 5}}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [action] = run.alert.actions
    assert action.status == "succeeded" and action.target == target
    assert action.result is not None and action.result["status"] == "SUCCEEDED"
    pipeline_run = get_pipeline_run(action.result["pipeline_run_id"])
    assert pipeline_run.params == {"alert_id": run.alert.id, "rows": 5}
    assert pipeline_run.output("retrain") == run.alert.id
    [tried] = action.history  # the attempt records the pipeline run it started
    assert tried.result == action.result and tried.outcome == "succeeded"
    event = audit.events(watched, action="action.trigger")[0]
    assert event.after["status"] == "succeeded" and event.after["reason"] == run.alert.reason


def test_a_failing_pipeline_fails_the_action_with_its_run_id(
    watched: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "retrain.py").write_text(textwrap.dedent(RETRAIN))
    target = f"{tmp_path / 'retrain.py'}:training"
    monitor(watched, [{"trigger": {"pipeline": target, "params": {"rows": -1}}}])
    production(watched, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [action] = run.alert.actions
    assert action.result is not None
    run_id = action.result["pipeline_run_id"]
    assert action.status == "failed"
    assert action.error == f"pipeline run {run_id} ended FAILED"
    assert get_pipeline_run(run_id).status == "FAILED"
    event = audit.events(watched, action="action.trigger")[0]
    assert event.after["status"] == "failed" and run_id in event.after["error"]


def test_a_trigger_of_a_missing_file_fails_the_action(
    local_workspace: Workspace, tmp_path: Path
) -> None:
    cauce.data.register("training", customers(1000))
    monitor(local_workspace, [{"trigger": {"pipeline": f"{tmp_path}/nope.py:training"}}])
    production(local_workspace, drifted=True)
    run = run_monitor("churn-drift", now=NOW, wait=True)
    assert run.alert is not None
    [action] = run.alert.actions
    assert action.status == "failed" and "no such file" in (action.error or "")


# -- the CLI ----------------------------------------------------------------------------------


MONITOR_YAML = """
kind: Monitor
name: churn-drift
target: {dataset: production}
reference: {dataset: training}
signals:
  - data_drift: {threshold: 0.2}
  - data_quality: {null_rate: 0.0}
on_alert:
  - log: {level: info}
"""


@pytest.mark.slow
def test_cli_monitors_and_alerts(local_workspace: Workspace, tmp_path: Path) -> None:
    home = local_workspace.settings.root
    cauce.data.register("training", customers(1000))
    production(local_workspace, drifted=False)
    (tmp_path / "monitor.yaml").write_text(MONITOR_YAML)
    applied = cauce_cli(home, "apply", "-f", str(tmp_path / "monitor.yaml")).stdout
    assert "Monitor churn-drift: created" in applied

    ok = cauce_cli(home, "monitors", "run", "churn-drift")
    assert "Monitor churn-drift: ok, 500 rows" in ok.stdout and "charges" in ok.stdout

    production(local_workspace, drifted=True, seed=2)
    alerted = cauce_cli(home, "monitors", "run", "churn-drift", "--wait", "--json", check=False)
    assert alerted.returncode == 1, alerted.stderr
    body = json.loads(alerted.stdout)
    assert body["status"] == "alert" and body["alert"]["state"] == "open"
    [action] = body["alert"]["actions"]
    assert (action["action"], action["status"], action["attempts"]) == ("log", "succeeded", 1)
    assert [a["outcome"] for a in action["history"]] == ["succeeded"]
    alert_id = body["alert"]["id"]
    assert action["idempotency_key"] == f"{alert_id}.0"

    listed = json.loads(cauce_cli(home, "monitors", "list", "--json").stdout)
    assert [m["name"] for m in listed] == ["churn-drift"]
    assert "churn-drift" in cauce_cli(home, "monitors", "list").stdout
    shown = json.loads(cauce_cli(home, "monitors", "show", "churn-drift", "--json").stdout)
    assert [r["status"] for r in shown["runs"]] == ["alert", "ok"]
    assert "Latest runs" in cauce_cli(home, "monitors", "show", "churn-drift").stdout
    series = json.loads(
        cauce_cli(home, "monitors", "history", "churn-drift", "--feature", "*", "--json").stdout
    )
    assert [v["outcome"] for v in series] == ["passed", "breached"]
    assert "drifted_share" in cauce_cli(home, "monitors", "history", "churn-drift").stdout

    alerts = json.loads(cauce_cli(home, "alerts", "list", "--json").stdout)
    assert [a["id"] for a in alerts] == [alert_id]
    assert "churn-drift" in cauce_cli(home, "alerts", "list", "--monitor", "churn-drift").stdout
    one = json.loads(cauce_cli(home, "alerts", "show", alert_id[:10], "--json").stdout)
    assert one["id"] == alert_id and one["breaches"]
    shown = cauce_cli(home, "alerts", "show", alert_id).stdout
    assert "Breaches" in shown and "Attempts" in shown and "succeeded" in shown

    audit_log = json.loads(cauce_cli(home, "audit", "--json", "-e", "alert").stdout)
    assert {e["action"] for e in audit_log} == {"alert.open", "action.log"}
    statuses = [e["after"]["status"] for e in audit_log if e["action"] == "action.log"]
    assert statuses == ["succeeded", "running", "pending"]

    # Without --wait the actions are queued for the agent, and the command returns.
    production(local_workspace, drifted=True, seed=3)
    (tmp_path / "monitor.yaml").write_text(MONITOR_YAML + "cooldown: 0s\n")
    cauce_cli(home, "apply", "-f", str(tmp_path / "monitor.yaml"))
    queued = cauce_cli(home, "monitors", "run", "churn-drift", check=False)
    assert queued.returncode == 1 and "log log: pending" in queued.stdout

    assert_one_line_error(cauce_cli(home, "monitors", "run", "nope", check=False), "nope")
    assert_one_line_error(cauce_cli(home, "monitors", "show", "nope", check=False), "nope")
    assert_one_line_error(cauce_cli(home, "alerts", "show", "zzzz", check=False), "zzzz")
    bad = tmp_path / "bad.yaml"
    bad.write_text(MONITOR_YAML.replace("data_drift:", "data_shift:"))
    assert_one_line_error(cauce_cli(home, "apply", "-f", str(bad), check=False), "data_shift")


def test_listing_alerts_reads_their_actions_in_a_fixed_number_of_queries(
    watched: Workspace, hook: Hook
) -> None:
    from sqlalchemy import event

    monitor(watched, [{"webhook": {"url": hook.url}}, {"log": None}], cooldown="0s")
    production(watched, drifted=True)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def listed() -> int:
        statements.clear()
        event.listen(watched.store.engine, "before_cursor_execute", count)
        try:
            alerts = list_alerts()
        finally:
            event.remove(watched.store.engine, "before_cursor_execute", count)
        assert all(len(a.actions) == 2 for a in alerts)
        return len(statements)

    run_monitor("churn-drift", now=NOW, wait=True)
    one = listed()
    for hours in range(1, 6):
        run_monitor("churn-drift", now=NOW + hours * HOUR, wait=True)
    assert len(list_alerts()) == 6
    assert listed() == one <= 4  # the alerts, their action runs, the runs' attempts
