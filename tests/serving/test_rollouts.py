"""Progressive rollouts: stages, analysis verdicts, promotion, rollback, pauses, restarts.

The controller is driven with explicit times (``tick(now=...)``) over measurements written the
way a router writes them (``store_windows``) and records written by the real collector, so each
test states exactly what the candidate did in the interval that is judged. The controller and
what a person does (start, status, promote, abort) run on SQLite, PostgreSQL and through a
server (``served``, ``controlled``); a test that patches the store's side in this process runs
on local stores (``beside_store``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cauce import workspace as workspace_module
from cauce.cli.main import app
from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.lineage.audit import events
from cauce.registry.models import get_version
from cauce.serving import analysis, rollouts
from cauce.serving.endpoints import get_endpoint, set_traffic, traffic_changes
from cauce.serving.metrics import Window, store_windows
from cauce.specs import apply
from cauce.stats import jensen_shannon
from cauce.store import now_ms
from cauce.store.schema import rollout_decisions
from cauce.workspace import Workspace
from remote import server_side
from served import CHURN_BLUE_GREEN, record_requests

ENDPOINT = CHURN_BLUE_GREEN


def rollout_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "Rollout",
        "endpoint": "churn",
        "candidate": "green",
        "steps": [{"weight": 10, "pause": "20s"}, {"weight": 50, "pause": "20s"}, {"weight": 100}],
        "analysis": {
            "interval": "10s",
            "failure_limit": 2,
            "min_requests": 10,
            "metrics": [
                {"name": "error_rate", "max": 0.05},
                {"name": "latency_p99_ms", "max": 100},
            ],
        },
    }
    spec.update(overrides)
    return spec


def _churn(ws: Workspace, tmp_path: Path, churn_model: Any) -> Workspace:
    """Endpoint churn: blue serves version 1 (champion) with all traffic; green version 2."""
    from cauce.registry.models import set_alias

    churn_model(c=1.0)
    churn_model(c=0.05)
    set_alias("churn", "champion", 1)
    spec = tmp_path / "endpoint.yaml"
    spec.write_text(ENDPOINT)
    apply(spec)
    return ws


@pytest.fixture
def served(any_workspace: Workspace, tmp_path: Path, churn_model: Any) -> Workspace:
    """:func:`_churn` on SQLite, PostgreSQL and through a server, for the controller."""
    return _churn(any_workspace, tmp_path, churn_model)


@pytest.fixture
def beside_store(store_workspace: Workspace, tmp_path: Path, churn_model: Any) -> Workspace:
    """:func:`_churn` on SQLite and PostgreSQL: the store is in this process."""
    return _churn(store_workspace, tmp_path, churn_model)


@pytest.fixture
def controlled(any_workspace: Workspace, tmp_path: Path, churn_model: Any) -> Workspace:
    """:func:`_churn` on SQLite, PostgreSQL and through a server: for a person's actions."""
    return _churn(any_workspace, tmp_path, churn_model)


def measure(ws: Workspace, deployment: str, at: int, requests: int, errors: int = 0,
            latency_ms: float = 5.0, source: str = "live") -> None:  # fmt: skip
    """What a router would store for ``deployment`` in a window ending at ``at``."""
    window = Window()
    for i in range(requests):
        window.observe(latency_ms, i < errors)
    endpoint_id = get_endpoint("churn", workspace=ws).id
    store_windows(ws, "churn", endpoint_id, at - 1000, at, {(deployment, source): window})


def decisions(ws: Workspace) -> list[str]:
    return [d.decision for d in rollouts.status("churn", workspace=ws).decisions]


def judge(ws: Workspace, after_ms: int, **measured: Any) -> rollouts.Rollout:
    """Measure the candidate, then run the controller ``after_ms`` past the analysis time."""
    state = rollouts.status("churn", workspace=ws)
    assert state.next_analysis_at is not None
    now = state.next_analysis_at + after_ms
    measure(ws, state.candidate, now - 1, **measured)
    analysed = rollouts.tick(now=now, workspace=ws)
    assert [r.id for r in analysed] == [state.id]
    return rollouts.status("churn", workspace=ws)


def test_start_gives_the_candidate_its_first_weight_and_is_recorded(controlled: Workspace) -> None:
    rollout = rollouts.start(rollout_spec(), workspace=controlled)
    assert (rollout.state, rollout.stage, rollout.weight, rollout.stable) == (
        "running",
        0,
        10,
        "blue",
    )
    assert get_endpoint("churn", workspace=controlled).traffic == {"blue": 90, "green": 10}
    assert decisions(controlled) == ["start"]
    actions = [e.action for e in events(workspace=controlled)]
    assert "rollout.start" in actions and "endpoint.traffic" in actions
    with pytest.raises(Conflict, match="already has a rollout in progress"):
        rollouts.start(rollout_spec(), workspace=controlled)


def test_a_healthy_candidate_advances_and_is_promoted_with_the_alias(served: Workspace) -> None:
    rollouts.start(rollout_spec(), workspace=served)
    rollout = judge(served, 0, requests=50)
    assert (rollout.state, rollout.stage) == ("running", 0)  # its pause (20 s) is not over
    rollout = judge(served, 20_000, requests=50)
    assert (rollout.stage, rollout.weight) == (1, 50)
    assert get_endpoint("churn", workspace=served).traffic == {"blue": 50, "green": 50}
    rollout = judge(served, 20_000, requests=50)
    assert (rollout.stage, rollout.weight) == (2, 100)
    rollout = judge(served, 0, requests=50)
    assert rollout.state == "promoted"
    assert get_endpoint("churn", workspace=served).traffic == {"blue": 0, "green": 100}
    assert "champion" in get_version("churn", 2, workspace=served).aliases
    assert decisions(served)[-1] == "promote"
    (moved, *_) = events(served, action="model.alias.set")  # the newest first
    assert moved.actor == rollout.decisions[-1].actor == "cauce-controller"
    # Whoever moved traffic is named alike in the traffic history, the audit and the decisions:
    # the person who started the rollout, then the controller that advanced and promoted it.
    changes = traffic_changes("churn", workspace=served)[-4:]
    assert [c["actor"] for c in changes] == ["tester"] + ["cauce-controller"] * 3
    assert [e.actor for e in events(served, action="endpoint.traffic")][:4] == [
        "cauce-controller"
    ] * 3 + ["tester"]
    assert [d.actor for d in rollout.decisions if d.decision in ("start", "advance")] == [
        "tester",
        "cauce-controller",
        "cauce-controller",
    ]
    passed = rollout.decisions[-2]
    assert passed.decision == "pass" and passed.measured["error_rate"]["value"] == 0.0
    assert passed.measured["latency_p99_ms"]["value"] == pytest.approx(5.0, rel=0.05)


def test_a_failing_candidate_is_rolled_back_with_the_measured_reason(served: Workspace) -> None:
    rollouts.start(rollout_spec(), workspace=served)
    rollout = judge(served, 0, requests=40, errors=8)
    assert rollout.state == "running" and rollout.failures == 1
    assert decisions(served)[-1] == "fail"
    rollout = judge(served, 0, requests=40, errors=8)
    assert rollout.state == "rolled_back"
    assert "error_rate 0.2 > max 0.05" in (rollout.reason or "")
    assert get_endpoint("churn", workspace=served).traffic == {"blue": 100, "green": 0}
    last = rollout.decisions[-1]
    assert last.decision == "rollback" and last.measured["error_rate"]["value"] == 0.2
    assert "champion" in get_version("churn", 1, workspace=served).aliases


def test_slow_candidate_fails_on_latency(served: Workspace) -> None:
    rollouts.start(rollout_spec(analysis={"failure_limit": 1, "min_requests": 5, "metrics": [
        {"name": "latency_p99_ms", "max": 50}]}), workspace=served)  # fmt: skip
    rollout = judge(served, 0, requests=20, latency_ms=120)
    assert rollout.state == "rolled_back"
    assert "latency_p99_ms" in (rollout.reason or "")


def test_too_few_requests_is_inconclusive_then_pauses_and_a_person_decides(
    served: Workspace,
) -> None:
    rollouts.start(rollout_spec(), workspace=served)
    for _ in range(3):
        rollout = judge(served, 0, requests=3)
    assert rollout.state == "paused"
    assert "3 inconclusive intervals in a row" in (rollout.reason or "")
    assert decisions(served)[-4:] == ["inconclusive", "inconclusive", "inconclusive", "pause"]
    shown = " ".join(CliRunner().invoke(app, ["rollouts", "status", "churn"]).output.split())
    resume = "resume it with cauce rollouts promote churn, or give blue its traffic back with"
    assert f"{resume} cauce rollouts abort churn" in shown
    assert rollouts.tick(now=rollout.stage_started_at + 10**9, workspace=served) == []
    rollout = rollouts.promote("churn", workspace=served)
    assert (rollout.state, rollout.stage) == ("running", 1)
    rollout = rollouts.abort("churn", reason="seen on the dashboard", workspace=served)
    assert rollout.state == "aborted"
    assert get_endpoint("churn", workspace=served).traffic == {"blue": 100, "green": 0}
    with pytest.raises(Conflict, match="no rollout in progress"):
        rollouts.abort("churn", workspace=served)


def test_a_person_advances_promotes_or_aborts_a_rollout(controlled: Workspace) -> None:
    """Without the controller: a step without ``pause`` waits for ``promote``; ``promote
    --full`` ends it at once, moving the alias; each action is a decision by the person."""
    steps = [{"weight": 30}, {"weight": 60}, {"weight": 100}]
    rollouts.start(rollout_spec(steps=steps), workspace=controlled)
    rollout = rollouts.promote("churn", workspace=controlled)
    assert (rollout.state, rollout.stage, rollout.weight) == ("running", 1, 60)
    assert get_endpoint("churn", workspace=controlled).traffic == {"blue": 40, "green": 60}
    rollout = rollouts.promote("churn", full=True, workspace=controlled)
    assert rollout.state == "promoted" and rollout.ended_at is not None
    assert [(d.decision, d.actor) for d in rollout.decisions] == [
        ("start", "tester"),
        ("advance", "tester"),
        ("promote", "tester"),
    ]
    assert "champion" in get_version("churn", 2, workspace=controlled).aliases
    with pytest.raises(Conflict, match="no rollout in progress"):
        rollouts.promote("churn", workspace=controlled)
    rollouts.start(rollout_spec(candidate="blue", stable="green"), workspace=controlled)
    with pytest.raises(Conflict, match="will advance on its own"):
        rollouts.promote("churn", workspace=controlled)
    rollout = rollouts.abort("churn", reason="not today", workspace=controlled)
    assert (rollout.state, rollout.reason, rollout.candidate) == ("aborted", "not today", "blue")
    assert get_endpoint("churn", workspace=controlled).traffic == {"blue": 0, "green": 100}
    with pytest.raises(NotFound, match="'nowhere'"):
        rollouts.status("nowhere", workspace=controlled)


def test_a_step_without_pause_waits_for_a_person(served: Workspace) -> None:
    rollouts.start(rollout_spec(steps=[{"weight": 30}, {"weight": 100}]), workspace=served)
    rollout = judge(served, 0, requests=50)
    assert rollout.state == "paused" and "waits for cauce rollouts promote" in (
        rollout.reason or ""
    )
    rollout = rollouts.promote("churn", workspace=served)
    assert (rollout.state, rollout.weight) == ("running", 100)
    rollout = rollouts.promote("churn", full=True, workspace=served)
    assert rollout.state == "promoted"
    assert "champion" in get_version("churn", 2, workspace=served).aliases


def test_promotion_and_its_alias_move_are_one_transaction(
    beside_store: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promotion whose alias move fails leaves nothing behind: the rollout still runs, traffic
    and alias are as they were; one that succeeds shows both at once, with one audit trail."""
    from cauce.errors import BackendError
    from cauce.registry import models

    rollouts.start(rollout_spec(steps=[{"weight": 30}, {"weight": 100}]), workspace=beside_store)
    before = get_endpoint("churn", workspace=beside_store).traffic

    def registry_down(*args: Any, **kwargs: Any) -> Any:
        raise BackendError("the registry is down")

    with monkeypatch.context() as patch:
        patch.setattr(models, "move_alias", registry_down)
        with pytest.raises(BackendError, match="registry is down"):
            rollouts.promote("churn", full=True, workspace=beside_store)
    rollout = rollouts.status("churn", workspace=beside_store)
    assert rollout.state == "running" and decisions(beside_store)[-1] == "start"
    assert get_endpoint("churn", workspace=beside_store).traffic == before
    assert "champion" in get_version("churn", 1, workspace=beside_store).aliases

    rollout = rollouts.promote("churn", full=True, workspace=beside_store)
    assert rollout.state == "promoted"
    assert "champion" in get_version("churn", 2, workspace=beside_store).aliases
    (moved, *_) = events(beside_store, action="model.alias.set")  # the newest first
    assert moved.actor == rollout.decisions[-1].actor == "tester"  # who promoted, by hand
    assert "rollout of green on churn promoted" in moved.after["reason"]
    history = get_alias_history(beside_store)
    assert history[-1] == ("champion", 1, 2, "tester")


def get_alias_history(ws: Workspace) -> list[tuple[str, int | None, int, str]]:
    from cauce.store.schema import model_alias_history

    with ws.store.read() as conn:
        rows = conn.execute(select(model_alias_history).order_by(model_alias_history.c.id)).all()
    return [(r.alias, r.from_version, r.to_version, r.user) for r in rows]


def test_a_promotion_that_cannot_be_carried_out_pauses_once_with_the_reason(
    served: Workspace,
) -> None:
    """A rollout stored with an alias the registry refuses (specs refuse it now; a rollout
    started before could hold one): its promotion fails the same way every time, so the
    controller pauses it once, saying why, instead of failing every interval."""
    from cauce.store.schema import rollouts as rollouts_table

    rollouts.start(rollout_spec(steps=[{"weight": 100}]), workspace=served)
    state = rollouts.status("churn", workspace=served)
    with server_side(served).store.write() as conn:
        conn.execute(
            rollouts_table.update()
            .where(rollouts_table.c.id == state.id)
            .values(spec={**state.spec, "alias": "latest"})
        )
    traffic = get_endpoint("churn", workspace=served).traffic
    rollout = judge(served, 0, requests=50)  # passes at 100%: the promotion is due
    assert rollout.state == "paused"
    assert decisions(served) == ["start", "pause"]
    reason = rollout.decisions[-1].reason
    assert "cannot carry out" in reason and "'latest' cannot be an alias" in reason
    assert rollout.reason == reason
    assert get_endpoint("churn", workspace=served).traffic == traffic  # nothing moved
    assert "champion" in get_version("churn", 1, workspace=served).aliases
    # Later intervals: nothing is due, nothing is decided again.
    assert rollouts.tick(now=state.stage_started_at + 10**9, workspace=served) == []
    assert decisions(served) == ["start", "pause"]
    # A person sees the same cause, and can roll back.
    with pytest.raises(InvalidInput, match="'latest' cannot be an alias"):
        rollouts.promote("churn", full=True, workspace=served)
    assert rollouts.abort("churn", workspace=served).state == "aborted"
    assert get_endpoint("churn", workspace=served).traffic == {"blue": 100, "green": 0}


def test_a_store_failure_while_judging_is_retried_at_the_next_interval(
    beside_store: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BackendError goes away: the rollout keeps running, no pause is recorded."""
    from cauce.errors import BackendError
    from cauce.registry import models

    rollouts.start(rollout_spec(steps=[{"weight": 100}]), workspace=beside_store)

    def registry_down(*args: Any, **kwargs: Any) -> Any:
        raise BackendError("the registry is down")

    with monkeypatch.context() as patch:
        patch.setattr(models, "move_alias", registry_down)
        state = rollouts.status("churn", workspace=beside_store)
        now = state.next_analysis_at + 1
        measure(beside_store, "green", now - 1, requests=50)
        assert rollouts.tick(now=now, workspace=beside_store) == []
    assert rollouts.status("churn", workspace=beside_store).state == "running"
    assert decisions(beside_store) == ["start"]
    rollout = judge(beside_store, 0, requests=50)
    assert rollout.state == "promoted"


def test_the_mirror_pre_stage_judges_mirrored_requests(served: Workspace) -> None:
    rollouts.start(rollout_spec(mirror={"percent": 50, "duration": "15s"}), workspace=served)
    endpoint = get_endpoint("churn", workspace=served)
    assert endpoint.traffic == {"blue": 100, "green": 0} and endpoint.mirror == {"green": 50}
    state = rollouts.status("churn", workspace=served)
    now = state.next_analysis_at + 5_000
    measure(served, "green", now - 1, requests=30, source="live")  # not what this stage judges
    rollouts.tick(now=now, workspace=served)
    assert decisions(served)[-1] == "inconclusive"
    rollout = judge(served, 5_000, requests=30, source="mirror")
    assert (rollout.stage, rollout.weight) == (0, 10)
    endpoint = get_endpoint("churn", workspace=served)
    assert endpoint.traffic == {"blue": 90, "green": 10} and endpoint.mirror == {}


def test_the_controller_resumes_from_the_store_and_never_judges_an_interval_twice(
    served: Workspace,
) -> None:
    rollouts.start(rollout_spec(), workspace=served)
    state = rollouts.status("churn", workspace=served)
    now = state.next_analysis_at + 1
    measure(served, "green", now - 1, requests=50)
    # A controller in a new process: a fresh workspace handle on the same store.
    workspace_module.reset()
    fresh = workspace_module.current()
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(len(rollouts.tick(now=now, workspace=fresh)))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 0, 0, 1]
    with server_side(fresh).store.read() as conn:
        analyses = conn.execute(
            select(func.count()).where(rollout_decisions.c.decision == "pass")
        ).scalar()
    assert analyses == 1


def test_an_interval_is_judged_once_what_was_answered_in_it_is_stored(
    served: Workspace,
) -> None:
    """A controller judges an interval ``settle_ms`` after it ends: a candidate's answers whose
    records reach the store in that time are measured in the interval they were answered in."""
    rollouts.start(rollout_spec(), workspace=served)
    state = rollouts.status("churn", workspace=served)
    end = state.next_analysis_at
    early = rollouts.claim_intervals(now=end + 1_999, settle_ms=2_000, workspace=served)
    assert early == ()
    measure(served, "green", end - 1, requests=50)  # answered before the end, stored after it
    [interval] = rollouts.claim_intervals(now=end + 2_000, settle_ms=2_000, workspace=served)
    assert (interval.since, interval.until) == (state.stage_started_at, end)
    assert rollouts.status("churn", workspace=served).next_analysis_at == end + 10_000
    measured = analysis.analyze(served, "churn", interval.rollout, interval.since, interval.until)
    assert measured["error_rate"]["ok"] is True  # the 50 requests were measured


def test_a_controller_in_another_process_takes_the_rollout_over(served: Workspace) -> None:
    """The rollout lives in the store: ``cauce agent --once``, a fresh process, judges it."""
    spec = rollout_spec(analysis={"interval": "1s", "failure_limit": 2, "metrics": [
        {"name": "error_rate", "max": 0.05}]})  # fmt: skip
    rollouts.start(spec, workspace=served)
    state = rollouts.status("churn", workspace=served)
    assert state.next_analysis_at is not None
    measure(served, "green", state.next_analysis_at - 1, requests=40, errors=10)
    # The agent judges an interval once it has settled (what was answered in it is stored).
    settled = state.next_analysis_at + rollouts.SETTLE_MS
    time.sleep(max(0.0, (settled - now_ms()) / 1000) + 0.05)
    agent = [sys.executable, "-m", "cauce.cli.main", "agent", "--once"]
    first = subprocess.run(agent, capture_output=True, text=True, timeout=120, env=os.environ)
    assert first.returncode == 0, first.stderr
    assert "rollout on churn: fail" in first.stdout
    assert decisions(served)[-1] == "fail"
    assert rollouts.status("churn", workspace=served).failures == 1


def _collect(ws: Workspace, deployment: str, at: int, predictions: list[int], source: str) -> None:
    rows = [{"age": 30 + i % 5, "charges": 50} for i in range(len(predictions))]
    ids = [f"{deployment}-{i}" for i in range(len(predictions))]
    record_requests(ws, rows, predictions, at=at, deployment=deployment, source=source, ids=ids)


def test_prediction_drift_and_sql_metrics_come_from_the_collector(served: Workspace) -> None:
    spec = rollout_spec(
        analysis={
            "failure_limit": 1,
            "min_requests": 1,
            "metrics": [
                {"name": "prediction_drift", "max": 0.2},
                {
                    "name": "positive_rate",
                    "max": 0.9,
                    "query": "SELECT avg(prediction) FROM candidate",
                },
                {"name": "mean_age", "min": 0, "query": "SELECT avg(age) FROM candidate"},
            ],
        }
    )
    rollouts.start(spec, workspace=served)
    state = rollouts.status("churn", workspace=served)
    now = state.next_analysis_at + 1
    stable = [0, 1] * 50
    candidate = [1] * 95 + [0] * 5  # a candidate that says "churn" to nearly everyone
    _collect(served, "blue", now - 500, stable, "live")
    _collect(served, "green", now - 500, candidate, "live")
    measure(served, "green", now - 1, requests=100)
    rollouts.tick(now=now, workspace=served)
    rollout = rollouts.status("churn", workspace=served)
    assert rollout.state == "rolled_back"
    measured = rollout.decisions[-1].measured
    assert measured["prediction_drift"]["value"] == pytest.approx(jensen_shannon(stable, candidate))
    assert measured["prediction_drift"]["ok"] is False
    assert measured["positive_rate"]["value"] == pytest.approx(0.95)
    assert measured["mean_age"]["value"] == pytest.approx(32.0)


def test_a_controller_away_from_the_router_leaves_it_the_rollouts_measured_on_its_records(
    served: Workspace,
) -> None:
    """An agent on another machine than the router has none of its collected records: it claims
    a rollout measured on the stored counts, and leaves one measured on collected records
    (drift here) to the controller beside the router, instead of judging it inconclusive."""
    drift = {"min_requests": 1, "metrics": [{"name": "prediction_drift", "max": 0.2}]}
    rollouts.start(rollout_spec(analysis=drift), workspace=served)
    now = rollouts.status("churn", workspace=served).next_analysis_at + 1
    assert rollouts.collected_here(served) == []
    assert rollouts.claim_intervals(now=now, collected=[], workspace=served) == ()
    assert rollouts.claim_intervals(now=now, collected=["other"], workspace=served) == ()
    _collect(served, "green", now - 500, [0, 1] * 5, "live")  # a router collected here
    assert rollouts.collected_here(served) == ["churn"]
    [claimed] = rollouts.claim_intervals(now=now, collected=["churn"], workspace=served)
    assert claimed.rollout.endpoint == "churn"

    rollouts.abort("churn", workspace=served)
    rollouts.start(rollout_spec(), workspace=served)  # error rate and latency: stored counts
    now = rollouts.status("churn", workspace=served).next_analysis_at + 1
    [claimed] = rollouts.claim_intervals(now=now, collected=[], workspace=served)
    assert claimed.rollout.spec["analysis"]["metrics"][0]["name"] == "error_rate"


def test_prediction_drift_without_collected_answers_is_inconclusive(served: Workspace) -> None:
    spec = rollout_spec(
        analysis={"min_requests": 1, "metrics": [{"name": "prediction_drift", "max": 0.2}]}
    )
    rollouts.start(spec, workspace=served)
    rollout = judge(served, 0, requests=30)
    assert decisions(served)[-1] == "inconclusive"
    assert "0 collected predictions of the candidate" in rollout.decisions[-1].reason


def test_applying_the_same_rollout_spec_again_changes_nothing(
    controlled: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(json.dumps(rollout_spec()))  # JSON is YAML
    assert [a.outcome for a in apply(path)] == ["created"]
    rollouts.abort("churn", workspace=controlled)
    assert [a.outcome for a in apply(path)] == ["unchanged"]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"steps": [{"weight": 50}, {"weight": 10}, {"weight": 100}]},
            InvalidInput,
            "must not decrease",
        ),
        (
            {"steps": [{"weight": 10}, {"weight": 50}]},
            InvalidInput,
            "last step must give the candidate 100%",
        ),
        (
            {"analysis": {"metrics": [{"name": "happiness", "max": 1}]}},
            InvalidInput,
            "give a query",
        ),
        ({"analysis": {"interval": "soon"}}, InvalidInput, "analysis.interval"),
        ({"candidate": "blue", "stable": "blue"}, InvalidInput, "must differ"),
        ({"candidate": "purple"}, NotFound, "no deployment 'purple'"),
        ({"alias": "latest"}, InvalidInput, "alias: 'latest' cannot be an alias"),
        ({"alias": "3"}, InvalidInput, "alias: '3' cannot be an alias"),
        ({"alias": "bad/name"}, InvalidInput, "alias: alias 'bad/name' must not"),
    ],
)
def test_bad_rollout_specs_are_refused_naming_the_cause(
    controlled: Workspace, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        rollouts.start(rollout_spec(**change), workspace=controlled)
    assert get_endpoint("churn", workspace=controlled).traffic == {"blue": 100}


@pytest.mark.parametrize("alias", ["latest", "LATEST", "3", "007", "", " ", "a/b", "a\\b",
                                   "-x", "champion", "new champ", "v2", "x" * 256])  # fmt: skip
def test_a_rollout_alias_follows_the_registrys_rule(controlled: Workspace, alias: str) -> None:
    """One rule for alias names: a spec is refused exactly when the registry would refuse."""
    from cauce.registry.models import set_alias

    try:
        set_alias("churn", alias, 2, workspace=controlled)
        registry_accepts = True
    except InvalidInput:
        registry_accepts = False
    try:
        cauce_apply(rollout_spec(alias=alias), controlled)
        spec_accepts = True
    except InvalidInput as exc:
        assert "Rollout spec: alias:" in exc.message
        spec_accepts = False
    assert spec_accepts == registry_accepts
    assert registry_accepts == (alias in ("champion", "new champ", "v2"))


def cauce_apply(document: dict[str, Any], ws: Workspace) -> Any:
    from cauce.specs import apply

    return apply(document, workspace=ws)


def test_a_rollout_needs_live_traffic_to_move(controlled: Workspace) -> None:
    set_traffic("churn", {"blue": 0}, workspace=controlled)
    with pytest.raises(InvalidInput, match="no deployment with live traffic"):
        rollouts.start(rollout_spec(), workspace=controlled)


WINDOW = {"deployment": "blue", "source": "live", "requests": 1, "errors": 0,
          "latency_sum_ms": 1.0, "latency_buckets": {"3": 1}}  # fmt: skip
REPORT = "0" * 32  # a usage report's id
USAGE = {"key_id": "k", "period": "2026-12", "requests": 1, "input_tokens": 1,
         "output_tokens": 1, "cost": 0.0}  # fmt: skip


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("rollouts/intervals/claims", {"now": "soon"}, "now"),
        ("rollouts/intervals/claims", {"now": 2**64}, "now"),
        ("rollouts/intervals/claims", {"settle_ms": -1}, "settle_ms"),
        ("rollouts/intervals/claims", {"collected": "churn"}, "collected"),
        ("rollouts/{rollout}/judgements", {"measured": {}, "now": -1}, "now"),
        ("rollouts/{rollout}/judgements", {"measured": {"x": {"ok": 2}}, "now": 1}, "measured.x"),
        ("endpoints/churn/stats", {"start": 5, "end": 1, "windows": []}, "end"),
        ("endpoints/churn/stats", {"start": "a", "end": 1, "windows": []}, "start"),
        ("endpoints/churn/stats", {"start": 1, "end": 2, "windows": [{**WINDOW, "source": "x"}]},
         "windows.0.source"),
        ("endpoints/churn/stats", {"start": 1, "end": 2, "windows": [{**WINDOW, "errors": 2}]},
         "windows.0.requests"),
        ("endpoints/churn/keys/usage", {"usage": [{**USAGE, "period": "2026"}],
                                         "report_id": REPORT}, "usage.0.period"),
        ("endpoints/churn/keys/usage", {"usage": [{**USAGE, "cost": -1}], "report_id": REPORT},
         "usage.0"),
        ("endpoints/churn/keys/usage", {"usage": [USAGE], "report_id": "r-1"}, "report_id"),
        ("endpoints/churn/keys/usage", {"usage": [USAGE]}, "report_id"),
    ],
)  # fmt: skip
def test_the_routers_and_controllers_routes_refuse_bad_input_naming_the_field(
    remote_workspace: Workspace,
    tmp_path: Path,
    churn_model: Any,
    route: str,
    body: dict[str, Any],
    field: str,
) -> None:
    """What a router or controller sends is checked by the server: a 422 naming the field, and
    nothing stored."""
    import httpx

    ws = _churn(remote_workspace, tmp_path, churn_model)
    rollouts.start(rollout_spec(), workspace=ws)
    rollout = rollouts.status("churn", workspace=ws)
    if route.endswith("/stats"):
        body = {**body, "endpoint_id": get_endpoint("churn", workspace=ws).id}
    url = f"{ws.settings.server_url}/api/v1/{route.replace('{rollout}', rollout.id)}"
    answer = httpx.post(url, json=body, timeout=30)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["field"] == field
    assert rollouts.status("churn", workspace=ws) == rollout
