"""``cauce monitors`` and ``cauce alerts`` against a ``cauce server`` (``CAUCE_SERVER_URL``), run as
a real process: a run is judged on the client and stored by the server; the agent on the
client's machine runs the alert's queued action through the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builders import customers, drift_monitor
from clitools import assert_one_line_error, cauce
from remote import TestServer as Server


@pytest.mark.slow
def test_monitor_commands_through_a_server(cauce_server: Server, tmp_path: Path) -> None:
    url = cauce_server.new_workspace()
    home = tmp_path / "client"  # holds nothing: the workspace is the server's

    def run(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return cauce(home, *args, check=check, server=url)

    def register(name: str, shift: float, seed: int) -> None:
        path = tmp_path / f"{name}-{seed}.csv"
        customers(500, seed, shift).to_csv(path, index=False)
        run("data", "register", name, str(path))

    register("training", 0.0, 0)
    register("production", 0.0, 1)
    spec = tmp_path / "monitor.yaml"
    spec.write_text(yaml.safe_dump(drift_monitor([{"log": {"level": "info"}}])))
    assert "Monitor churn-drift: created" in run("apply", "-f", str(spec)).stdout

    ok = run("monitors", "run", "churn-drift")
    assert "Monitor churn-drift: ok, 500 rows" in ok.stdout and "charges" in ok.stdout

    register("production", 25.0, 2)
    alerted = run("monitors", "run", "churn-drift", "--json", check=False)
    assert alerted.returncode == 1, alerted.stderr
    body = json.loads(alerted.stdout)
    assert body["status"] == "alert" and body["alert"]["state"] == "open"
    assert body["summary"]["window_dataset"] == "churn-drift.window@1"
    [action] = body["alert"]["actions"]
    assert (action["action"], action["status"]) == ("log", "pending")  # for the server's agent
    alert_id = body["alert"]["id"]

    listed = json.loads(run("monitors", "list", "--json").stdout)
    assert [(m["name"], m["last_run_at"] is not None) for m in listed] == [("churn-drift", True)]
    shown = json.loads(run("monitors", "show", "churn-drift", "--json").stdout)
    assert [r["status"] for r in shown["runs"]] == ["alert", "ok"] and shown["last_values"]
    series = json.loads(
        run("monitors", "history", "churn-drift", "--feature", "*", "--json").stdout
    )
    assert [v["outcome"] for v in series] == ["passed", "breached"]
    alerts = json.loads(run("alerts", "list", "--state", "open", "--json").stdout)
    assert [a["id"] for a in alerts] == [alert_id]
    one = json.loads(run("alerts", "show", alert_id[:10], "--json").stdout)
    assert one["id"] == alert_id and one["breaches"] and one["actions"][0]["status"] == "pending"
    assert "Breaches" in run("alerts", "show", alert_id).stdout
    page = tmp_path / "report.html"
    assert (
        "report written to" in run("monitors", "report", "churn-drift", "--html", str(page)).stdout
    )
    assert "<h1>Monitor churn-drift</h1>" in page.read_text()

    once = run("agent", "--once")
    assert f"action log log ({alert_id}.0): succeeded, attempt 1" in once.stdout, once.stdout
    [action] = json.loads(run("alerts", "show", alert_id, "--json").stdout)["actions"]
    assert (action["status"], [a["outcome"] for a in action["history"]]) == (
        "succeeded",
        ["succeeded"],
    )
    waited = run("monitors", "run", "churn-drift", "--wait", check=False)
    assert waited.returncode == 1 and "alert" in waited.stdout, waited.stderr
    assert_one_line_error(run("monitors", "run", "nope", check=False), "nope")
    assert_one_line_error(run("alerts", "list", "--state", "closed", check=False), "state")
    assert_one_line_error(run("alerts", "show", "zzzz", check=False), "zzzz")
    shown = json.loads(run("monitors", "show", "churn-drift", "--json").stdout)
    assert len(shown["runs"]) == 3
    assert not home.exists()  # nothing was written on the client's side
