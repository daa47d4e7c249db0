"""Alert actions as queued work: claims, leases, retries, and agents sharing one queue.

Real pieces only: webhooks go to a loopback ``http.server`` (:mod:`webhooks`), agents are
``cauce agent`` processes killed with SIGKILL, or workers on their own workspace handles, on
SQLite, PostgreSQL and through a server (every step of the queue is an operation). Leases
expire when a test moves the workers' clock (:class:`Clock`), or when it writes
``lease_expires_at``, never by sleeping, so that a loaded machine changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

import cauce
from builders import customers, drift_monitor
from cauce.automation.agent import Agent
from cauce.errors import CauceError
from cauce.lineage import audit
from cauce.monitoring.actions.queue import Outcome, finish
from cauce.monitoring.actions.runners import run_attempt
from cauce.monitoring.actions.workers import ActionPool, Worker
from cauce.monitoring.alerts import get_alert, list_alerts, raise_alert
from cauce.monitoring.monitors import run_monitor, runs, stored_spec
from cauce.pipelines.records import start_pipeline_run
from cauce.pipelines.runs import get_pipeline_run, list_pipeline_runs
from cauce.specs import apply
from cauce.store import HEAD_REVISION, now_ms
from cauce.store.schema import action_runs, monitors
from cauce.workspace import Workspace
from clitools import wait_until
from remote import server_side
from stored import refusing_inserts
from together import at_once
from webhooks import Hook

NOW = 1_800_000_000_000


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """SQLite, PostgreSQL, then through a server: the queue's steps are operations."""
    return seam_any_workspace


def watch(ws: Workspace, on_alert: list[dict[str, Any]], **extra: Any) -> None:
    """Monitor ``churn-drift``: drifted ``production`` against ``training``, raising alerts."""
    cauce.data.register("training", customers(600, 0), workspace=ws)
    cauce.data.register("production", customers(300, 1, shift=25.0), workspace=ws)
    apply(drift_monitor(on_alert, **extra), workspace=ws)


def queue(ws: Workspace, on_alert: list[dict[str, Any]], alerts: int) -> list[str]:
    """``alerts`` open alerts of one monitor run, each with its actions pending; their ids."""
    watch(ws, on_alert, cooldown="0s")
    first = run_monitor("churn-drift", now=NOW, actions=False, workspace=ws)
    assert first.alert is not None
    store = server_side(ws).store
    with store.read() as conn:
        row = conn.execute(select(monitors)).one()
    spec = stored_spec(row.spec)
    with store.write() as conn:
        return [
            raise_alert(conn, row, spec, first.id, first.alert.breaches, now=NOW + 1 + i).id
            for i in range(alerts)
        ]


def with_lease(ws: Workspace, seconds: float) -> Workspace:
    """Another handle on the same store whose workers hold leases this long."""
    return Workspace(dataclasses.replace(ws.settings, action_lease_s=seconds))


class Clock:
    """The workers' time, in milliseconds: it starts now and moves only when a test moves it."""

    def __init__(self) -> None:
        self.at = now_ms()

    def __call__(self) -> int:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += int(seconds * 1000)


def expire_leases(ws: Workspace) -> None:
    """Every lease held now has expired (as if its agent had stopped renewing it long ago)."""
    with server_side(ws).store.write() as conn:
        conn.execute(
            update(action_runs).where(action_runs.c.status == "running").values(lease_expires_at=1)
        )


# -- the queue ----------------------------------------------------------------------------------


def test_a_monitor_run_queues_its_actions_and_returns_without_waiting(
    any_workspace: Workspace,
) -> None:
    held = Hook(hold=1)
    try:
        watch(any_workspace, [{"webhook": {"url": held.url}}, {"log": {"level": "info"}}])
        started = time.monotonic()
        run = run_monitor("churn-drift", now=NOW)
        took = time.monotonic() - started
        assert run.alert is not None and run.alert.state == "open"
        assert held.received == []  # nothing ran: a receiver that hangs cannot hold the run
        assert took < 30
        alert_id = run.alert.id
        stored = get_alert(alert_id).actions
        assert [(a.action, a.status, a.attempts, a.position) for a in stored] == [
            ("webhook", "pending", 0, 0),
            ("log", "pending", 0, 1),
        ]
        assert [a.idempotency_key for a in stored] == [f"{alert_id}.0", f"{alert_id}.1"]
        assert all(a.history == [] and a.next_attempt_at is not None for a in stored)
        events = audit.events(any_workspace, entity_id=alert_id)
        assert {(e.action, e.after["status"]) for e in events if e.action.startswith("action")} == {
            ("action.webhook", "pending"),
            ("action.log", "pending"),
        }
        # One alert can never hold two runs of the same action: the key is unique in the store.
        duplicate = {
            "id": "f" * 32,
            "alert_id": alert_id,
            "position": 0,
            "idempotency_key": f"{alert_id}.0",
            "action": "webhook",
            "target": held.url,
            "spec": {"webhook": {"url": held.url}},
            "status": "pending",
            "attempts": 0,
            "created_at": 0,
        }
        with (
            pytest.raises(CauceError, match="idempotency_key"),
            server_side(any_workspace).store.write() as conn,
        ):
            conn.execute(action_runs.insert().values(**duplicate))
    finally:
        held.close()


def test_of_workers_racing_for_one_run_exactly_one_claims_it(any_workspace: Workspace) -> None:
    queue(any_workspace, [{"log": {"level": "info"}}], alerts=1)
    handles = [with_lease(any_workspace, 60) for _ in range(4)]
    workers = [Worker(ws) for ws in handles]
    try:
        claims = at_once([lambda w=w: len(w.claim(5)) for w in workers])
    finally:
        for ws in handles:
            ws.close()
    assert sorted(claims) == [0, 0, 0, 1]


def test_an_expired_lease_is_taken_over_and_the_late_worker_is_not_recorded(
    any_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    [alert_id] = queue(any_workspace, [{"log": {"level": "info"}}], alerts=1)
    clock = Clock()
    first, second = Worker(any_workspace, clock=clock), Worker(any_workspace, clock=clock)
    [held] = first.claim(1)
    clock.advance(59)
    assert second.claim(1) == ()  # the lease (60 s) holds
    clock.advance(2)  # the first worker neither renewed nor finished: it is as good as dead
    [taken] = second.claim(1)
    assert (held.run_id, held.number, taken.number) == (taken.run_id, 1, 2)

    # The first worker wakes up and finishes: the run is no longer its to record.
    late = finish(
        held.run_id, held.number, first.agent, Outcome({"logged": "info"}),
        actor="agent", now=clock(), workspace=any_workspace,
    )  # fmt: skip
    assert late is None
    with caplog.at_level("WARNING", logger="cauce.alerts"):
        first.renew()  # its lease is not extended either, and it forgets the run
        first.renew()
    assert [r.getMessage() for r in caplog.records] == [
        f"action run {held.run_id}: lease lost to another worker"
    ]
    [run] = get_alert(alert_id, workspace=any_workspace).actions
    assert (run.status, run.claimed_by, run.attempts) == ("running", second.agent, 2)
    assert run.lease_expires_at == taken_at(clock, second)

    done = second.run(taken)
    assert done is not None and done.status == "succeeded"
    abandoned, succeeded = done.history
    assert (abandoned.number, abandoned.agent, abandoned.outcome) == (1, first.agent, "abandoned")
    assert abandoned.error is not None and "lease expired" in abandoned.error
    assert "ended later and succeeded" in abandoned.error
    assert (succeeded.number, succeeded.agent, succeeded.outcome) == (2, second.agent, "succeeded")
    statuses = [e.after["status"] for e in reversed(audit.events(any_workspace, action="action.*"))]
    assert statuses == ["pending", "running", "running", "succeeded"]


def taken_at(clock: Clock, worker: Worker) -> int:
    """When a lease the worker took at the clock's time expires."""
    return clock() + worker.lease_ms


def test_a_run_whose_agent_dies_three_times_fails(workspace: Workspace) -> None:
    [alert_id] = queue(workspace, [{"log": {"level": "info"}}], alerts=1)
    clock = Clock()
    for number in (1, 2, 3):
        [claimed] = Worker(workspace, clock=clock).claim(1)
        assert claimed.number == number
        clock.advance(61)  # the lease is 60 s
    assert Worker(workspace, clock=clock).claim(1) == ()
    [run] = get_alert(alert_id, workspace=workspace).actions
    assert run.status == "failed" and run.error is not None
    assert run.error.startswith("abandoned 3 times")
    assert [a.outcome for a in run.history] == ["abandoned"] * 3


def test_a_stored_action_that_no_longer_parses_fails_instead_of_blocking_the_queue(
    workspace: Workspace,
) -> None:
    first, second = queue(workspace, [{"log": {"level": "info"}}], alerts=2)
    with workspace.store.write() as conn:
        conn.execute(
            update(action_runs)
            .where(action_runs.c.alert_id == first)
            .values(spec={"log": {"level": "loud"}})
        )
    [claimed] = Worker(workspace).claim(2)  # the broken one is failed, not claimed
    assert claimed.alert["alert_id"] == second
    broken = the_run(workspace, first)
    assert broken.status == "failed" and broken.history == []
    assert broken.error is not None and broken.error.startswith("its stored action is not valid")


def test_renewed_leases_keep_a_long_action_with_its_worker(workspace: Workspace) -> None:
    held = Hook(hold=1)
    try:
        [alert_id] = queue(workspace, [{"webhook": {"url": held.url, "timeout": 120}}], alerts=1)
        clock = Clock()
        pool = ActionPool(workspace, workers=1, clock=clock)
        pool.start()
        wait_until(lambda: held.received)

        def lease() -> int | None:
            [run] = get_alert(alert_id, workspace=workspace).actions
            return run.lease_expires_at

        first = lease()
        assert first == clock() + 60_000
        # Twice 50 s: over the first lease, so only renewals (every 20 s) keep the claim.
        for _ in range(2):
            clock.advance(50)
            wait_until(lambda: lease() == clock() + 60_000)
        assert clock() > first
        assert Worker(workspace, clock=clock).claim(1) == ()
        held.release.set()
        [run] = wait_until(
            lambda: [
                x for x in get_alert(alert_id, workspace=workspace).actions if x.status != "running"
            ]
        )
        pool.stop()
        assert run.status == "succeeded" and [a.outcome for a in run.history] == ["succeeded"]
        assert len(held.received) == 1
    finally:
        held.close()


# -- agents ---------------------------------------------------------------------------------------


def test_agents_sharing_a_queue_run_each_action_exactly_once(
    any_workspace: Workspace, hook: Hook
) -> None:
    alert_ids = queue(any_workspace, [{"webhook": {"url": hook.url}}, {"log": None}], alerts=30)
    handles = [with_lease(any_workspace, 30) for _ in range(3)]
    pools = [ActionPool(ws, workers=3) for ws in handles]
    try:
        ran = at_once([pool.drain for pool in pools])
    finally:
        for ws in handles:
            ws.close()

    every = [run for i in alert_ids for run in get_alert(i, workspace=any_workspace).actions]
    assert len(every) == 60 and sum(map(len, ran)) == 60
    assert {(r.status, r.attempts, len(r.history)) for r in every} == {("succeeded", 1, 1)}
    webhooks = sorted(r.idempotency_key for r in every if r.action == "webhook")
    assert sorted(hook.keys()) == webhooks  # each webhook sent once, none twice
    assert len({r.history[0].agent for r in every}) > 1  # the agents shared the work
    claims = audit.events(any_workspace, action="action.*", limit=1000)
    assert sum(e.after["status"] == "running" for e in claims) == 60


def test_the_agent_keeps_running_monitors_while_an_action_runs(workspace: Workspace) -> None:
    held = Hook(hold=2)
    try:
        webhook = {"webhook": {"url": held.url, "timeout": 60}}
        watch(workspace, [webhook], schedule="0 * * * *", cooldown="0s")

        def due() -> None:
            with workspace.store.write() as conn:
                conn.execute(update(monitors).values(next_run_at=1))

        stop = threading.Event()
        agent = threading.Thread(target=Agent(workspace).run, args=(0.1, stop), daemon=True)
        due()
        agent.start()
        try:
            wait_until(lambda: len(held.received) == 1)
            # The first alert's webhook hangs; the loop runs the monitor again meanwhile, and a
            # second worker takes the second alert's webhook.
            due()
            wait_until(lambda: len(held.received) == 2)
            assert len(runs("churn-drift")) == 2
            assert [a.actions[0].status for a in list_alerts()] == ["running", "running"]
        finally:
            held.release.set()
            stop.set()
            agent.join(60)
        assert not agent.is_alive()  # it stopped once the actions it ran had finished
        assert [a.actions[0].status for a in list_alerts()] == ["succeeded", "succeeded"]
    finally:
        held.close()


# -- real agents, killed ------------------------------------------------------------------------


def start_agent(tmp_path: Path, name: str) -> subprocess.Popen[str]:
    """``cauce agent`` in its own process, on the test's workspace (default lease: 60 s)."""
    with open(tmp_path / f"{name}.log", "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "cauce.cli.main", "agent", "--interval", "0.2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )


def stop_agent(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def cli(*args: str) -> str:
    """``cauce ARGS`` with this test's settings (CAUCE_HOME, CAUCE_DB_URL); its output."""
    result = subprocess.run(
        [sys.executable, "-m", "cauce.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def the_run(ws: Workspace, alert_id: str, position: int = 0) -> Any:
    return get_alert(alert_id, workspace=ws).actions[position]


# A retraining in two steps: ``prepare`` is quick; the first ``retrain`` hangs until its agent
# is killed. Each step notes in marks.txt when it really runs (a cache hit does not).
SLOW_RETRAIN = """
import time
from pathlib import Path

import cauce

MARKS = Path(__file__).parent / "marks.txt"


def mark(word: str) -> None:
    with MARKS.open("a") as marks:
        marks.write(word + "\\n")


@cauce.step
def prepare(alert_id: str) -> str:
    mark("prepare")
    return alert_id


@cauce.step
def retrain(prepared: str) -> str:
    mark("start")
    if MARKS.read_text().split().count("start") == 1 and (MARKS.parent / "hang").exists():
        time.sleep(300)  # the first retraining is killed with its agent
    mark("done")
    return prepared


@cauce.pipeline
def retraining(alert_id: str = ""):
    return retrain(prepare(alert_id))
"""


def retraining(tmp_path: Path, hang: bool = False) -> tuple[str, Path]:
    """The retraining pipeline file (``FILE.py:NAME``) and its marks file."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "retrain.py").write_text(textwrap.dedent(SLOW_RETRAIN))
    if hang:
        (flows / "hang").touch()
    return f"{flows / 'retrain.py'}:retraining", flows / "marks.txt"


def marks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.slow
def test_a_killed_agents_actions_are_taken_up_again_and_its_retraining_resumed_once(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    held = Hook(hold=1)  # the first request hangs until the agent sending it is dead
    pipeline, marked = retraining(tmp_path, hang=True)
    first = second = None
    try:
        watch(
            any_workspace,
            [{"trigger": {"pipeline": pipeline}}, {"webhook": {"url": held.url, "timeout": 120}}],
        )
        run = run_monitor("churn-drift", now=NOW)
        assert run.alert is not None
        alert_id = run.alert.id
        first = start_agent(tmp_path, "first")
        wait_until(lambda: held.received and "start" in marks(marked), timeout=120)
        for position in (0, 1):
            claimed = the_run(any_workspace, alert_id, position)
            assert claimed.status == "running" and f":{first.pid}:" in claimed.claimed_by

        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
        # Its leases would expire in a minute; the test does not wait for that.
        expire_leases(any_workspace)
        second = start_agent(tmp_path, "second")

        def both_done() -> list[Any]:
            actions = get_alert(alert_id).actions
            return actions if all(a.status == "succeeded" for a in actions) else []

        trigger, webhook = wait_until(both_done, timeout=120)
        assert stop_agent(second) == 0
        log = (tmp_path / "second.log").read_text()
        assert f"action webhook {held.url} ({alert_id}.1): succeeded, attempt 2" in log
        assert f"action trigger {pipeline} ({alert_id}.0): succeeded, attempt 2" in log
    finally:
        held.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    # Both actions: an abandoned attempt by the killed agent, then one that succeeded.
    for action in (trigger, webhook):
        assert action.attempts == 2 and action.error is None
        abandoned, succeeded = action.history
        assert abandoned.outcome == "abandoned" and f":{first.pid}:" in abandoned.agent
        assert abandoned.error is not None and abandoned.error.startswith("lease expired")
        assert succeeded.outcome == "succeeded" and f":{second.pid}:" in succeeded.agent
    assert webhook.history[1].result == {"status_code": 200}
    # The receiver saw the same key twice, and can drop the repeat.
    assert held.keys() == [f"{alert_id}.1", f"{alert_id}.1"]

    # The retraining was started once more, not twice more: the killed run is marked failed,
    # and the new one resumed it, its finished step taken from the cache.
    assert marks(marked) == ["prepare", "start", "start", "done"]
    killed, resumed = sorted(list_pipeline_runs("retraining"), key=lambda r: r.start_time)
    assert killed.status == "FAILED" and killed.error is not None
    assert killed.error.startswith("abandoned: its runner stopped before the run ended")
    assert resumed.id in killed.error
    assert resumed.status == "SUCCEEDED"
    assert killed.idempotency_key == resumed.idempotency_key == f"{alert_id}.0"
    assert trigger.result == {
        "pipeline_run_id": resumed.id,
        "status": "SUCCEEDED",
        "resumed": [killed.id],
    }
    steps = get_pipeline_run(resumed.id).steps
    assert (steps["prepare"].cache_hit, steps["retrain"].cache_hit) == (True, False)
    assert get_pipeline_run(resumed.id).output("retrain") == alert_id

    # The alert's history, as a user reads it (SQLite, PostgreSQL, or through the server).
    shown = json.loads(cli("alerts", "show", alert_id, "--json"))
    for action in shown["actions"]:
        assert action["status"] == "succeeded"
        assert [a["outcome"] for a in action["history"]] == ["abandoned", "succeeded"]
    table = cli("alerts", "show", alert_id)
    assert "Attempts" in table and "abandoned" in table and "lease expired" in table
    events = reversed(audit.events(any_workspace, action="action.webhook"))
    agent = "tester (as agent)" if any_workspace.remote else "agent"  # the server's principal
    assert [(e.actor, e.after["status"], e.after.get("attempt")) for e in events] == [
        ("monitor", "pending", None),
        (agent, "running", 1),
        (agent, "running", 2),
        (agent, "succeeded", 2),
    ]


def test_a_retraining_that_succeeded_before_its_agent_died_is_recorded_not_run_again(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    pipeline, marked = retraining(tmp_path)
    [alert_id] = queue(any_workspace, [{"trigger": {"pipeline": pipeline}}], alerts=1)
    clock = Clock()
    dead, alive = Worker(any_workspace, clock=clock), Worker(any_workspace, clock=clock)
    [claimed] = dead.claim(1)
    # The first agent runs the retraining to its end, then dies before recording it.
    ran = run_attempt(any_workspace, claimed, partial(start_pipeline_run, workspace=any_workspace))
    assert ran.error is None and ran.result is not None
    assert marks(marked) == ["prepare", "start", "done"]

    clock.advance(61)
    [again] = alive.claim(1)
    done = alive.run(again)
    assert done is not None and done.status == "succeeded"
    assert marks(marked) == ["prepare", "start", "done"]  # nothing ran again
    assert done.result == {**ran.result, "reused": True}
    [only] = list_pipeline_runs("retraining")
    assert only.id == ran.result["pipeline_run_id"] and only.idempotency_key == f"{alert_id}.0"
    assert [a.outcome for a in done.history] == ["abandoned", "succeeded"]


def test_an_agent_that_lost_its_lease_starts_no_retraining(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    pipeline, marked = retraining(tmp_path)
    [alert_id] = queue(any_workspace, [{"trigger": {"pipeline": pipeline}}], alerts=1)
    clock = Clock()
    slow, other = Worker(any_workspace, clock=clock), Worker(any_workspace, clock=clock)
    [late] = slow.claim(1)
    clock.advance(61)  # the first agent stalled past its lease; another takes the run over
    [taken] = other.claim(1)

    # Both agents are alive; the one that lost the lease starts nothing.
    assert slow.run(late) is None
    assert marks(marked) == [] and list_pipeline_runs("retraining") == []
    done = other.run(taken)
    assert done is not None and done.status == "succeeded"
    assert marks(marked) == ["prepare", "start", "done"]
    lost = done.history[0]
    assert lost.outcome == "abandoned" and lost.error is not None
    assert f"action run {alert_id}.0 is no longer held by agent {slow.agent}" in lost.error


def test_a_store_failure_is_retried(any_workspace: Workspace, tmp_path: Path) -> None:
    pipeline, marked = retraining(tmp_path)
    trigger = {"trigger": {"pipeline": pipeline, "retries": 1, "backoff": "1s"}}
    [alert_id] = queue(any_workspace, [trigger], alerts=1)
    clock = Clock()
    worker = Worker(any_workspace, clock=clock)
    [claimed] = worker.claim(1)
    with refusing_inserts(
        server_side(any_workspace), "pipeline_runs"
    ):  # the store fails for a moment
        waiting = worker.run(claimed)
    assert waiting is not None and waiting.status == "pending"
    assert waiting.error is not None and "refused by the test" in waiting.error
    assert waiting.next_attempt_at == clock() + 1000
    assert marks(marked) == []

    clock.advance(1)
    [retried] = worker.claim(1)
    done = worker.run(retried)
    assert done is not None and done.status == "succeeded" and done.attempts == 2
    assert [a.outcome for a in done.history] == ["failed", "succeeded"]
    assert marks(marked) == ["prepare", "start", "done"]
    assert the_run(any_workspace, alert_id).status == "succeeded"


@pytest.mark.slow
def test_agent_once_runs_the_actions_due_now(workspace: Workspace, hook: Hook) -> None:
    [alert_id] = queue(workspace, [{"webhook": {"url": hook.url}}], alerts=1)
    result = cli("agent", "--once")
    assert f"action webhook {hook.url} ({alert_id}.0): succeeded, attempt 1" in result
    assert the_run(workspace, alert_id).status == "succeeded"
    assert hook.keys() == [f"{alert_id}.0"]


@pytest.mark.empty_store
def test_action_runs_from_before_the_queue_survive_the_migration(
    store_workspace: Workspace,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from cauce.store.migrate import alembic_config

    store = store_workspace.store
    store_workspace.settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(store_workspace.settings.db_url)
    with engine.connect() as conn, conn.begin():
        command.upgrade(alembic_config(conn), "0005")
    rows = {
        "monitors": "('m1', 'old', '{}', 'x', true, NULL, NULL, 1, 1)",
        "monitor_runs": "('r1', 'm1', NULL, 'alert', NULL, NULL, 0, '{}', NULL, 1, 1)",
        "alerts": "('a1', 'm1', 'r1', 'f', 'open', '[]', 'why', 1, NULL)",
        "action_runs": "('x2', 'a1', 'log', 'log', 'succeeded', 1, NULL, NULL, 20, 21), "
        "('x1', 'a1', 'webhook', 'http://h/', 'failed', 4, NULL, 'boom', 10, 12)",
    }
    with engine.connect() as conn, conn.begin():
        for table, values in rows.items():
            conn.execute(text(f"INSERT INTO {table} VALUES {values}"))
    engine.dispose()
    assert store.upgrade() == ("0005", HEAD_REVISION)
    old = get_alert("a1").actions
    assert [(a.id, a.position, a.idempotency_key, a.status, a.attempts) for a in old] == [
        ("x1", 0, "a1.0", "failed", 4),
        ("x2", 1, "a1.1", "succeeded", 1),
    ]
    assert old[0].created_at == 10 and old[0].error == "boom" and old[0].history == []
    with store.read() as conn:
        spec = conn.execute(select(action_runs.c.spec).where(action_runs.c.id == "x1")).scalar()
    assert spec == {"webhook": {"url": "http://h/"}}


def test_a_downgrade_below_the_queue_fails_the_runs_no_older_version_can_finish(
    store_workspace: Workspace,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from cauce.store.migrate import alembic_config

    on_alert = [{"log": {"level": "info"}}, {"log": {"level": "warning"}}, {"log": None}]
    [alert_id] = queue(store_workspace, on_alert, alerts=1)
    done, running, pending = (r.id for r in get_alert(alert_id, workspace=store_workspace).actions)
    worker = Worker(store_workspace)
    worker.run(worker.claim(1, run_id=done)[0])
    worker.claim(1, run_id=running)  # its agent is still at it when the store goes back
    store_workspace.store.engine.dispose()

    engine = create_engine(store_workspace.settings.db_url)
    with engine.connect() as conn, conn.begin():
        command.downgrade(alembic_config(conn), "0005")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status, error, started_at, ended_at FROM action_runs")
        ).all()
    engine.dispose()
    found = {row.id: row for row in rows}
    assert (found[done].status, found[done].error) == ("succeeded", None)
    assert found[running].status == found[pending].status == "failed"
    assert found[running].error.startswith("downgraded: the store went back to a version ")
    assert f"while an agent ({worker.agent}) ran this action" in found[running].error
    assert found[pending].error.endswith("before an agent ran this action")
    assert all(row.started_at is not None and row.ended_at is not None for row in rows)

    # Upgraded again, they stay failed: nothing claims them.
    assert store_workspace.store.upgrade() == ("0005", HEAD_REVISION)
    after = {
        r.id: (r.status, r.history) for r in get_alert(alert_id, workspace=store_workspace).actions
    }
    assert after == {done: ("succeeded", []), running: ("failed", []), pending: ("failed", [])}
    assert Worker(store_workspace).claim(3) == ()
