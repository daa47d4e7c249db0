"""``cauce apply``, ``cauce endpoints`` (their keys too), ``cauce deployments`` and ``cauce
rollouts`` against a ``cauce server`` (``CAUCE_SERVER_URL``), run as real processes: specs are
read here and applied there, control goes through the server, and bad input says so in one
line. Serving itself against a server: tests/serving/test_serving_remote.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import assert_one_line_error, cauce
from remote import TestServer as Server

# Deployments that send requests on to an LLM server through a connection: no model to log.
SPECS = """
kind: Connection
name: llm
base_url: http://127.0.0.1:9/v1
---
kind: Endpoint
name: assistant
traffic: {blue: 100}
---
kind: Deployment
endpoint: assistant
name: blue
connection: llm
---
kind: Deployment
endpoint: assistant
name: green
connection: llm
"""
ROLLOUT = """
kind: Rollout
endpoint: assistant
candidate: green
steps: [{weight: 20}, {weight: 100}]
"""


@pytest.mark.slow
def test_specs_and_endpoints_through_a_server(cauce_server: Server, tmp_path: Path) -> None:
    url = cauce_server.new_workspace()
    home = tmp_path / "client"  # holds nothing: the workspace is the server's
    specs, rollout = tmp_path / "specs.yaml", tmp_path / "rollout.yaml"
    specs.write_text(SPECS)
    rollout.write_text(ROLLOUT)

    def run(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return cauce(home, *args, check=check, server=url)

    planned = run("apply", "-f", str(specs), "--dry-run").stdout.splitlines()
    assert planned == [
        "Connection llm: created",
        "Endpoint assistant: created",
        "Deployment assistant/blue: created",
        "Deployment assistant/green: created",
        "dry run: nothing was changed",
    ]
    assert json.loads(run("endpoints", "list", "--json").stdout) == []
    run("apply", "-f", str(specs))
    again = json.loads(run("apply", "-f", str(specs), "--json").stdout)
    assert [d["outcome"] for d in again["documents"]] == ["unchanged"] * 4
    assert again["documents"][1]["source"] == f"{specs} document 2"

    [endpoint] = json.loads(run("endpoints", "list", "--json").stdout)
    assert (endpoint["name"], endpoint["traffic"]) == ("assistant", {"blue": 100})
    assert [d["name"] for d in endpoint["deployments"]] == ["blue", "green"]
    assert "assistant" in run("endpoints", "list").stdout
    shown = json.loads(run("deployments", "show", "assistant", "green", "--json").stdout)
    assert shown["target"] == "connections:/llm"
    assert (
        "blue=90%, green=10%"
        in run("endpoints", "traffic", "assistant", "blue=90", "green=10").stdout
    )
    history = json.loads(run("endpoints", "traffic", "assistant", "--json").stdout)
    assert [(h["traffic"], h["actor"]) for h in history][-1] == (
        {"blue": 90, "green": 10},
        "tester",  # the server's user: authentication is off on its loopback address
    )
    assert_one_line_error(
        run("endpoints", "traffic", "assistant", "blue=50", "red=50", check=False),
        "no deployment 'red'",
    )

    run("endpoints", "traffic", "assistant", "blue=100", "green=0")
    assert "Rollout assistant/green: created" in run("rollouts", "start", "-f", str(rollout)).stdout
    status = json.loads(run("rollouts", "status", "assistant", "--json").stdout)
    assert (status["state"], status["weight"]) == ("running", 20)
    assert "candidate weight 100%" in run("rollouts", "promote", "assistant").stdout
    assert "aborted" in run("rollouts", "abort", "assistant", "--reason", "by hand").stdout
    decisions = json.loads(run("rollouts", "status", "assistant", "--json").stdout)["decisions"]
    assert [d["decision"] for d in decisions] == ["start", "advance", "rollback"]

    assert_one_line_error(
        run("endpoints", "delete", "assistant", check=False), "still has deployments"
    )
    created = json.loads(run("endpoints", "keys", "create", "assistant", "team", "--json").stdout)
    [listed] = json.loads(run("endpoints", "keys", "list", "assistant", "--json").stdout)
    assert listed["prefix"] == created["key"][:9] and listed["revoked_at"] is None
    assert "revoked key team" in run("endpoints", "keys", "revoke", "assistant", "team").stdout
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text("kind: Connection\nname: other\napi_key: sk-written-here\n")
    assert_one_line_error(
        run("apply", "-f", str(keyed), check=False),
        f"{keyed} document 1",
        "api_key holds the key itself",
    )
    run("deployments", "delete", "assistant", "green")
    assert [d["name"] for d in json.loads(run("deployments", "list", "--json").stdout)] == ["blue"]
    assert not home.exists()  # nothing was written on the client's side
