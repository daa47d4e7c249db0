"""Tracking in a real browser: a run's charts, the runs table's filter, order and columns,
runs compared, and a long metric drawn downsampled then exact on zoom."""

from __future__ import annotations

import re
from typing import Any

import pytest

import cauce
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


def _sweep(runs: int = 12) -> list[Any]:
    made = []
    for i in range(runs):
        with cauce.start_run(experiment="sweep", run_name=f"trial-{i:02d}") as run:
            cauce.log_params({"lr": round(0.01 * (i + 1), 3), "depth": 3 + i % 3})
            for step in range(0, 300, 3):
                cauce.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            cauce.log_metric("auc", 0.6 + 0.03 * i)
        made.append(run)
    return made


def test_a_logged_run_shows_its_metric_charts(ui: Any, remote_workspace: Workspace) -> None:
    [run] = _sweep(1)
    ui.goto(ui.at(f"/ui/runs/{run.info.run_id}"))
    ui.wait_for_selector("figure.chart.ready >> canvas")
    loss = ui.locator('figure.chart[data-key="loss"]')
    assert int(loss.get_attribute("data-points")) == 100  # every logged step: few enough
    assert loss.get_attribute("data-exact") == "true"
    assert ui.locator("h1").inner_text().startswith("trial-00")
    # auc was logged once: its value is in the table of scores, not a chart of one point.
    assert ui.locator('figure.chart[data-key="auc"]').count() == 0
    assert ui.locator("table.scores").inner_text().split() == ["auc", "0.6"]
    with cauce.start_run(experiment="e") as again:
        for value in (0.5, 0.55, 0.6):
            cauce.log_metric("accuracy", value)  # no step: each at step 0, as in MLflow
    ui.goto(ui.at(f"/ui/runs/{again.info.run_id}"))
    assert ui.locator("figure.chart").count() == 0  # one step: a value, its latest
    assert ui.locator("table.scores").inner_text().split() == ["accuracy", "0.6"]
    ui.shot("run")


def test_the_runs_table_filters_orders_and_chooses_columns(
    ui: Any, remote_workspace: Workspace
) -> None:
    _sweep()
    ui.goto(ui.at("/ui/runs?experiment=sweep"))
    rows = ui.locator("table.runs tbody tr")
    assert rows.count() == 12
    ui.fill("#filter", "metrics.auc > 0.85")
    ui.wait_for_function("document.querySelectorAll('table.runs tbody tr').length === 3")
    assert "filter=metrics.auc" in ui.url  # the URL holds the search: it can be shared
    ui.get_by_role("link", name=re.compile("^auc")).click()
    ui.wait_for_selector('th[aria-sort="descending"]')
    names = ui.locator("table.runs tbody tr td:nth-child(2)").all_inner_texts()
    assert names == ["trial-11", "trial-10", "trial-09"]
    ui.get_by_role("link", name=re.compile("^auc")).click()
    ui.wait_for_selector('th[aria-sort="ascending"]')
    assert ui.locator("table.runs tbody tr td:nth-child(2)").first.inner_text() == "trial-09"

    ui.fill("#filter", "metrics.auc >>> 1")
    ui.wait_for_selector("#runs-table .error")
    assert "filter" in ui.locator("#runs-table .error").inner_text()

    ui.fill("#filter", "")
    ui.wait_for_function("document.querySelectorAll('table.runs tbody tr').length === 12")
    ui.get_by_text("Columns").click()
    ui.get_by_label("depth").check()
    ui.wait_for_selector("th >> text=depth")
    ui.shot("runs")


def test_selected_runs_are_compared_side_by_side(ui: Any, remote_workspace: Workspace) -> None:
    _sweep(6)
    ui.goto(ui.at("/ui/runs?experiment=sweep"))
    for i in range(0, 6, 2):
        ui.get_by_label(f"select trial-{i:02d}").check()
    ui.get_by_role("button", name="Compare selected").click()
    ui.wait_for_selector("figure.chart.ready >> canvas")
    differs = ui.locator("tr.differs th").all_inner_texts()
    assert differs == ["depth", "lr"]
    compared = ui.locator("table.compare thead th a").all_inner_texts()
    assert sorted(compared) == ["trial-00", "trial-02", "trial-04"]
    assert ui.locator("svg.parallel polyline").count() == 3  # the sweep, a line per run
    plot, box = (ui.locator(s).bounding_box() for s in ("svg.parallel", "section .graph"))
    assert plot["width"] >= 0.8 * box["width"]  # four axes spread over the page, not a corner
    # Every value, a metric's number too, starts under its run's name as the params do.
    aligned = ui.evaluate(
        "() => [...document.querySelectorAll('table.compare tbody td')]"
        ".map((td) => getComputedStyle(td).textAlign)"
    )
    assert set(aligned) == {"left"}
    ui.shot("compare")


def test_a_long_metric_is_drawn_downsampled_then_exact_when_zoomed(
    ui: Any, remote_workspace: Workspace
) -> None:
    from cauce.store.schema import metrics
    from remote import server_side

    with cauce.start_run(experiment="long") as run:
        cauce.log_metric("loss", 1.0, step=0)
    run_id = run.info.run_id  # once: each look at an active run's info reads it again
    rows = [
        {"run_id": run_id, "key": "loss", "value": 1.0 / (s + 1), "is_nan": False,
         "step": s, "timestamp": 0}
        for s in range(1, 100_000)
    ]  # fmt: skip
    with server_side(remote_workspace).store.write() as conn:  # 100,000 steps, set up at once
        conn.execute(metrics.insert(), rows)
    ui.goto(ui.at(f"/ui/runs/{run_id}"))
    chart = ui.locator('figure.chart[data-key="loss"]')
    ui.wait_for_selector('figure.chart[data-key="loss"].ready >> canvas')
    assert int(chart.get_attribute("data-points")) <= 1000
    assert chart.get_attribute("data-exact") == "false"
    # Drag across 8% of the x axis, twice: the zoomed steps are read again each time,
    # downsampled over 8,000 steps, then exact over 640.
    for exact in ("false", "true"):
        box = ui.locator('figure.chart[data-key="loss"] .u-over').bounding_box()
        y = box["y"] + box["height"] / 2
        ui.mouse.move(box["x"] + box["width"] * 0.46, y)
        ui.mouse.down()
        ui.mouse.move(box["x"] + box["width"] * 0.54, y, steps=5)
        ui.mouse.up()
        ui.wait_for_function(
            "([steps, exact]) => { const f = document.querySelector("
            "'figure.chart[data-key=\"loss\"]'); return f.dataset.zoomed === steps "
            "&& f.dataset.exact === exact; }",
            arg=["1" if exact == "false" else "2", exact],
        )
    ui.shot("long-metric")


def test_long_names_and_values_keep_the_runs_table_readable(
    ui: Any, remote_workspace: Workspace
) -> None:
    for i in range(2):
        name = f"eval flows--rag-answer-2 on cauce-docs-{i}"
        with cauce.start_run(experiment="evals", run_name=name):
            cauce.log_params({"batch_run": "c39e33691454408d9009a96486c3d5be", "data": "q@1"})
            cauce.log_metric("f1", 0.05 + i / 10)
    ui.goto(ui.at("/ui/runs?experiment=evals"))
    name = ui.locator("table.runs td.run").first
    started = ui.locator("table.runs td.when").first
    line = ui.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24")
    # Each on one line (they wrapped a word or a date part per line beside long values)...
    assert name.bounding_box()["height"] < 2 * line and started.bounding_box()["height"] < 2 * line
    # ...and a long value is cut, whole on hover.
    batch = ui.locator("table.runs td.text[title]").first
    assert batch.get_attribute("title") == "c39e33691454408d9009a96486c3d5be"
    assert ui.evaluate("(td) => td.scrollWidth > td.clientWidth", batch.element_handle())
    ui.shot("runs-long-values")
