"""Schedules, dataset triggers and the agent that fires them.

The claims and firings run on SQLite, PostgreSQL and through a server (``seam_any_workspace``):
the agent reaches the store only through operations (a remote workspace's ``store`` raises, so
any direct touch would fail).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import cauce
from cauce.automation.agent import Agent
from cauce.automation.schedules import claim_schedules, end_firing, firings, list_schedules
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.specs import apply
from cauce.workspace import Workspace
from remote import server_side
from together import at_once

HOUR = 3600 * 1000

CRON = """
kind: Schedule
name: hourly
pipeline: flows.py:training
cron: "0 * * * *"
params: {rows: 3}
"""
TRIGGER = """
kind: Schedule
name: on-new-customers
pipeline: flows.py:training
trigger: {dataset: customers}
"""


class Recorder:
    """A pipeline runner that records what the agent asked it to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def __call__(
        self, target: str, params: dict[str, Any], executor: str, ws: Workspace
    ) -> tuple[str | None, str]:
        self.calls.append((target, params, executor))
        return None, "SUCCEEDED"


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_apply_is_idempotent_and_audited(any_workspace: Workspace, tmp_path: Path) -> None:
    spec = write(tmp_path, CRON + "---" + TRIGGER)
    assert [a.outcome for a in apply(spec)] == ["created", "created"]
    assert [a.outcome for a in apply(spec)] == ["unchanged", "unchanged"]
    write(tmp_path, CRON.replace("rows: 3", "rows: 4"))
    assert [a.outcome for a in apply(spec)] == ["updated"]
    actions = [e.action for e in audit.events(any_workspace, entity_kind="schedule")]
    assert sorted(actions) == ["schedule.create", "schedule.create", "schedule.update"]
    assert {s.name for s in list_schedules()} == {"hourly", "on-new-customers"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (CRON.replace("cron:", "crom:"), "crom"),
        (CRON.replace('"0 * * * *"', '"61 * * * *"'), "cron"),
        (CRON + "trigger: {dataset: customers}\n", "exactly one of cron or trigger"),
        (CRON.replace("flows.py:training", "flows:training"), "pipeline"),
        (CRON.replace("name: hourly", "name: a/b"), "path separator"),
        ("kind: Nope\nname: x\n", "unknown kind"),
        ("just text", "kind"),
    ],
)
def test_bad_specs_name_the_field(
    workspace: Workspace, tmp_path: Path, text: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        apply(write(tmp_path, text))
    assert list_schedules() == []


def test_an_unknown_kind_later_in_the_file_applies_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="unknown kind"):
        apply(write(tmp_path, CRON + "---\nkind: Nope\nname: x\n"))
    assert list_schedules() == []


def test_missed_cron_slots_fire_once(seam_any_workspace: Workspace, tmp_path: Path) -> None:
    apply(write(tmp_path, CRON))
    due = list_schedules()[0].next_run_at
    assert due is not None
    runner = Recorder()
    fire = Agent(seam_any_workspace, runner=runner)
    assert fire.tick(now=due - 1) == []
    five_hours_late = due + 5 * HOUR + 123
    [fired] = fire.tick(now=five_hours_late)
    assert fired.status == "SUCCEEDED" and "cron 0 * * * *" in fired.reason
    assert fire.tick(now=five_hours_late) == []
    assert runner.calls == [("flows.py:training", {"rows": 3}, "local")]
    after = list_schedules()[0].next_run_at
    assert after is not None and five_hours_late < after <= five_hours_late + HOUR
    assert [f["status"] for f in firings("hourly")] == ["SUCCEEDED"]
    [event] = audit.events(server_side(seam_any_workspace), action="schedule.fire")
    assert event.actor == ("tester (as agent)" if seam_any_workspace.remote else "agent")


def test_dataset_trigger_fires_once_for_the_newest_version(
    seam_any_workspace: Workspace, tmp_path: Path
) -> None:
    cauce.data.register("customers", pd.DataFrame({"a": [0]}))  # before the trigger: ignored
    apply(write(tmp_path, TRIGGER))
    runner = Recorder()
    fire = Agent(seam_any_workspace, runner=runner)
    assert fire.tick() == []
    cauce.data.register("customers", pd.DataFrame({"a": [1]}))
    cauce.data.register("customers", pd.DataFrame({"a": [2]}))
    [fired] = fire.tick()
    assert fired.reason == "dataset customers v3"
    assert fire.tick() == []
    assert len(runner.calls) == 1


def test_two_agents_never_fire_the_same_slot(seam_any_workspace: Workspace, tmp_path: Path) -> None:
    apply(write(tmp_path, CRON))
    due = list_schedules()[0].next_run_at
    assert due is not None

    def claim() -> int:
        return len(Agent(seam_any_workspace, runner=Recorder()).claim_due(now=due + 1))

    assert sorted(at_once([claim] * 4)) == [0, 0, 0, 1]
    assert [f["status"] for f in firings("hourly")] == ["RUNNING"]


def test_a_failing_pipeline_is_recorded_and_the_agent_goes_on(
    seam_any_workspace: Workspace, tmp_path: Path
) -> None:
    apply(write(tmp_path, CRON))
    due = list_schedules()[0].next_run_at
    assert due is not None

    def broken(*args: Any) -> tuple[str | None, str]:
        raise RuntimeError("disk on fire")

    [fired] = Agent(seam_any_workspace, runner=broken).tick(now=due)
    assert fired.status == "FAILED" and fired.error == "RuntimeError: disk on fire"
    assert firings("hourly")[0]["error"] == "RuntimeError: disk on fire"


def test_a_claim_through_a_server_claims_once_and_its_end_is_a_plain_set(
    remote_workspace: Workspace, tmp_path: Path
) -> None:
    apply(write(tmp_path, CRON))
    due = list_schedules()[0].next_run_at
    assert due is not None
    [claim] = claim_schedules(now=due, actor="agent")
    assert (claim.schedule, claim.spec["params"]) == ("hourly", {"rows": 3})
    assert claim.reason.startswith("cron 0 * * * *: due at ")
    assert claim_schedules(now=due) == ()
    assert claim_schedules() == ()  # the server's clock: the next slot is still ahead
    for _ in range(2):  # a retry after a lost answer sets the same again
        end_firing(claim.firing_id, "SUCCEEDED", pipeline_run_id="0" * 32)
    [fired] = firings("hourly")
    assert (fired["status"], fired["pipeline_run_id"], fired["error"]) == (
        "SUCCEEDED",
        "0" * 32,
        None,
    )
    with pytest.raises(NotFound, match="firing 'nope'"):
        end_firing("nope", "FAILED")
    with pytest.raises(InvalidInput, match="SUCCEEDED or FAILED"):
        end_firing(claim.firing_id, "DONE")
    assert firings("hourly") == [fired]


@pytest.mark.parametrize("route", ["schedules", "monitors", "indexes"])
@pytest.mark.parametrize("now", ["soon", 2**64, -1, 10**15, 1.5])
def test_a_claim_with_a_bad_now_is_a_422_naming_it(
    remote_workspace: Workspace, route: str, now: object
) -> None:
    url = f"{remote_workspace.settings.server_url}/api/v1/{route}/claims"
    answer = httpx.post(url, json={"now": now}, timeout=30)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["field"] == "now"


PIPELINE = """
import cauce


@cauce.step
def make(rows: int) -> list:
    return list(range(rows))


@cauce.step
def total(values: list) -> int:
    return sum(values)


@cauce.pipeline
def training(rows: int = 2):
    return total(make(rows))
"""


@pytest.mark.slow
def test_cli_apply_and_agent_run_a_real_pipeline(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    (home / "flows.py").write_text(PIPELINE)
    (home / "schedules.yaml").write_text(textwrap.dedent(TRIGGER))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env.update({"CAUCE_HOME": str(home), "COLUMNS": "200"})

    def cauce_cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cauce.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=home,
        )
        assert result.returncode == 0, result.stderr
        return result

    assert "created" in cauce_cli("apply", "-f", "schedules.yaml").stdout
    assert "unchanged" in cauce_cli("apply", "-f", "schedules.yaml").stdout
    register = (
        "import cauce, pandas as pd; cauce.data.register('customers', pd.DataFrame({'a': [1]}))"
    )
    subprocess.run([sys.executable, "-c", register], env=env, check=True, timeout=120)
    fired = cauce_cli("agent", "--once").stdout
    assert "dataset customers v1" in fired and "SUCCEEDED" in fired
    assert "on-new-customers" in cauce_cli("schedules", "list").stdout
    assert "SUCCEEDED" in cauce_cli("schedules", "firings", "on-new-customers").stdout


def test_schedules_and_their_firings_are_read_through_a_server(
    seam_workspace: Workspace, tmp_path: Path
) -> None:
    """`cauce schedules list` and `firings` read through a server too."""
    apply(write(tmp_path, CRON))
    apply(write(tmp_path, TRIGGER, "trigger.yaml"))
    listed = list_schedules()
    assert [s.name for s in listed] == ["hourly", "on-new-customers"]
    assert listed[0].enabled and listed[0].next_run_at is not None
    assert listed[1].spec["trigger"] == {"dataset": "customers"}
    assert firings("hourly") == []
    with pytest.raises(NotFound, match="nightly"):
        firings("nightly")
    Agent(seam_workspace, runner=Recorder()).tick(now=listed[0].next_run_at)
    [fired] = firings("hourly")
    assert fired["status"] == "SUCCEEDED" and fired["reason"].startswith("cron 0 * * * *")
