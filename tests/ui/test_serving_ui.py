"""Serving in a real browser: a rollout started, its decisions appearing as the controller
makes them, and an editor promoting it from the page."""

from __future__ import annotations

from typing import Any

import pytest

from cauce.serving import rollouts
from cauce.serving.endpoints import get_endpoint
from cauce.serving.metrics import Window, store_windows
from cauce.specs import apply
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow

ENDPOINT = [
    {"kind": "Connection", "name": "llm", "base_url": "http://127.0.0.1:9/v1"},
    {"kind": "Endpoint", "name": "assistant", "traffic": {"blue": 100}},
    {"kind": "Deployment", "endpoint": "assistant", "name": "blue", "connection": "llm"},
    {"kind": "Deployment", "endpoint": "assistant", "name": "green", "connection": "llm"},
]
ROLLOUT = {
    "kind": "Rollout", "endpoint": "assistant", "candidate": "green",
    "steps": [{"weight": 20}, {"weight": 100}],
    "analysis": {"interval": "1s", "min_requests": 1,
                 "metrics": [{"name": "error_rate", "max": 0.05}]},
}  # fmt: skip


def test_a_rollouts_decisions_appear_and_an_editor_promotes_it(
    ui: Any, remote_workspace: Workspace
) -> None:
    apply(ENDPOINT)
    started = rollouts.start(ROLLOUT)
    ui.goto(ui.at("/ui/endpoints/assistant"))
    assert "green 20%" in ui.locator("section[aria-labelledby=traffic-h]").inner_text()
    assert ui.locator("tr.decision").count() == 1  # start
    # The router measures green; the controller judges the interval: the page follows.
    window = Window()
    for _ in range(25):
        window.observe(9.0, False)
    at = started.next_analysis_at
    assert at is not None
    endpoint_id = get_endpoint("assistant").id
    windows = {("green", "live"): window}
    store_windows(remote_workspace, "assistant", endpoint_id, at - 1000, at, windows)
    rollouts.tick(now=at + 1)
    ui.wait_for_selector("tr.decision.pass", timeout=10_000)  # polled every 2 s
    # The first step has no pause: it waits for a person.
    ui.wait_for_selector("tr.decision.pause", timeout=10_000)
    ui.on("dialog", lambda dialog: dialog.accept())
    ui.get_by_role("button", name="Promote now").click()
    ui.wait_for_selector("tr.decision.promote")
    assert rollouts.status("assistant").state == "promoted"
    assert ui.locator(".rollout-state").inner_text() == "promoted"
    # The page was drawn again: the traffic the promotion moved shows too.
    assert "green 100%" in ui.locator("section[aria-labelledby=traffic-h]").inner_text()
    ui.shot("endpoint-rollout")
