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
    share = ui.locator('figure.chart[data-feature="*"] figcaption .metric').inner_text()
    assert share == "all features"  # the drifted share is of the whole window, not of "*"
    ui.shot("monitor")
    ui.locator("table.alerts a").first.click()
    ui.wait_for_selector("table.attempts")
    assert "succeeded" in ui.locator("table.attempts").inner_text()
    ui.shot("alert")


def test_a_monitor_run_once_draws_its_value_against_the_threshold(
    ui: Any, remote_workspace: Workspace
) -> None:
    cauce.data.register("training", customers(600, 0))
    cauce.data.register("production", customers(300, 1, shift=25.0))
    apply(drift_monitor())
    run_monitor("churn-drift", wait=True)
    ui.goto(ui.at("/ui/monitors/churn-drift"))
    ui.wait_for_selector('figure.chart[data-feature="charges"].ready >> canvas')
    assert ui.locator('figure.chart[data-feature="charges"]').get_attribute("data-points") == "1"
    drawn = ui.evaluate(
        """() => [...document.querySelectorAll('figure.chart.ready')].map((f) => {
             const u = f.uplot, line = u.series.findIndex((s) => s.label === 'threshold');
             return {feature: f.dataset.feature, x: [u.scales.x.min, u.scales.x.max],
                     y: [u.scales.y.min, u.scales.y.max], value: u.data[1].find((v) => v != null),
                     threshold: line < 0 ? null : u.data[line]};
           })"""
    )
    assert drawn
    for chart in drawn:
        # One run is a point in the middle of a minute or two of time, never at an edge...
        assert chart["x"][0] < chart["x"][1]
        low, high = chart["y"]
        assert low <= chart["value"] <= high and high - low < 100
        if chart["threshold"] is not None:
            # ...and its threshold is a line across the plot, within the y axis.
            level, *rest = chart["threshold"]
            assert len(rest) == 2 and set(rest) == {level} and low <= level <= high
    ui.shot("monitor-once")
