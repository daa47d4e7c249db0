"""Usable in a real browser: from the keyboard, with focus visible, and in a narrow window
(nothing wider than the screen but the tables, which scroll in place)."""

from __future__ import annotations

from typing import Any

import pytest

import cauce
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow

PAGES = ["/ui/experiments", "/ui/runs", "/ui/models", "/ui/datasets", "/ui/pipelines",
         "/ui/endpoints", "/ui/monitors", "/ui/prompts", "/ui/traces", "/ui/audit"]  # fmt: skip


def test_the_keyboard_reaches_the_content_and_focus_shows(
    ui: Any, remote_workspace: Workspace
) -> None:
    with cauce.start_run(experiment="churn", run_name="first"):
        cauce.log_metric("auc", 0.8)
    ui.goto(ui.at("/ui/runs"))
    ui.keyboard.press("Tab")
    assert ui.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = ui.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")  # focus is visible
    ui.keyboard.press("Enter")
    assert ui.evaluate("location.hash") == "#main"
    ui.focus("#filter")  # the search box takes the filter language from the keyboard
    ui.keyboard.type("metrics.auc > 0.5")
    ui.wait_for_function("location.search.includes('filter=metrics.auc')")
    assert ui.locator("table.runs tbody tr").count() == 1


def test_every_page_fits_a_narrow_window(browser: Any, remote_workspace: Workspace) -> None:
    with cauce.start_run(experiment="churn", run_name="a-run-with-a-long-name-that-wraps"):
        cauce.log_params({f"param_{i}": i for i in range(12)})
        cauce.log_metrics({f"metric_{i}": i / 10 for i in range(12)})
    _fit_a_narrow_window(browser, remote_workspace, PAGES, "narrow-audit.png")


def test_pages_with_long_ids_names_and_values_fit_a_narrow_window(
    browser: Any, remote_workspace: Workspace
) -> None:
    """A run id, a dataset's long name, a value with no space to break at, a model card's
    table: each wraps or scrolls in place, the page never scrolls sideways."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    token = "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"
    frame = pd.DataFrame({"answer": [token] * 5 + ["short"] * 5, "score": range(10)})
    cauce.data.register("evals.rag-answer.flows-answers-with-a-long-name", frame)
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    with cauce.start_run(experiment="churn", run_name="trained") as run:
        cauce.log_params({"batch_run": "c39e33691454408d9009a96486c3d5be" * 3})
        cauce.log_model(model, "model", registered_model="churn")
    pages = [
        f"/ui/runs/{run.info.run_id}",
        "/ui/models/churn/versions/1",
        "/ui/datasets/evals.rag-answer.flows-answers-with-a-long-name",
    ]
    _fit_a_narrow_window(browser, remote_workspace, pages, "narrow-dataset.png")


def _fit_a_narrow_window(browser: Any, ws: Workspace, paths: list[str], shot: str) -> None:
    """Each page at 390 px wide scrolls down only; the last one's screenshot is ``shot``."""
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        for path in paths:
            page.goto(f"{ws.settings.server_url}{path}")
            wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wider <= 1, (path, wider)
        page.screenshot(path=str(_shots() / shot), full_page=True)
    finally:
        context.close()


def _shots() -> Any:
    from pathlib import Path

    folder = Path(__file__).parents[2] / "build" / "ui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
