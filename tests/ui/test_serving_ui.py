"""Serving in a real browser: a rollout started, its decisions appearing as the controller
makes them, and an editor promoting it from the page."""

from __future__ import annotations

from typing import Any

import pytest

from builders import ASSISTANT, assistant_rollout
from cauce.serving import rollouts
from cauce.serving.endpoints import get_endpoint
from cauce.serving.metrics import Window, store_windows
from cauce.specs import apply
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


def test_a_rollouts_decisions_appear_and_an_editor_promotes_it(
    ui: Any, remote_workspace: Workspace
) -> None:
    apply(ASSISTANT)
    started = rollouts.start(assistant_rollout())
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
    summary = ui.locator("#rollout > p").first.inner_text()
    assert "ended at stage 1 of 2" in summary and "20%" not in summary  # green has 100% now
    # The page was drawn again: the traffic the promotion moved shows too.
    assert "green 100%" in ui.locator("section[aria-labelledby=traffic-h]").inner_text()
    ui.shot("endpoint-rollout")
