"""Monitoring in a real browser: a monitor's drift chart against its threshold, and the alert
it raised with the attempt at its action."""

from __future__ import annotations

from typing import Any

import pytest

import cauce
from builders import customers, drift_monitor
from cauce.monitoring.monitors import run_monitor
from cauce.specs import apply
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


def test_a_drift_chart_and_the_alert_it_raised(ui: Any, remote_workspace: Workspace) -> None:
    cauce.data.register("training", customers(600, 0))
    cauce.data.register("production", customers(300, 1))
    apply(drift_monitor([{"log": {"level": "info"}}]))
    for hour, shift in enumerate((0.0, 10.0, 25.0)):
        cauce.data.register("production", customers(300, hour + 2, shift=shift))
        run_monitor("churn-drift", now=1_800_000_000_000 + hour * 3_600_000, wait=True)
    ui.goto(ui.at("/ui/monitors"))
    ui.get_by_role("link", name="churn-drift").click()
    charges = ui.locator('figure.chart[data-feature="charges"]')
    ui.wait_for_selector('figure.chart[data-feature="charges"].ready >> canvas')
    assert charges.get_attribute("data-points") == "3"
    assert "breached" in charges.get_attribute("class")
    ui.shot("monitor")
    ui.locator("table.alerts a").first.click()
    ui.wait_for_selector("table.attempts")
    assert "succeeded" in ui.locator("table.attempts").inner_text()
    ui.shot("alert")
