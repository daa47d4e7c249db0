"""The registry in a real browser: a model's versions, an alias moved from the page and its
history growing."""

from __future__ import annotations

from typing import Any

import pytest

import cauce
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


def test_an_alias_moved_in_the_page_shows_in_its_history(
    ui: Any, remote_workspace: Workspace
) -> None:
    from sklearn.linear_model import LogisticRegression

    for c in (1.0, 0.1):
        model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        with cauce.start_run(experiment="churn"):
            cauce.log_model(model, "model", registered_model="churn")
    ui.goto(ui.at("/ui/models"))
    ui.get_by_role("link", name="churn").click()
    ui.wait_for_selector("table.versions")
    assert ui.locator("table.versions tbody tr").count() == 2
    for version, count in (("1", 1), ("2", 2)):
        ui.get_by_label("to").select_option(version)
        ui.get_by_label("Reason").fill(f"promote v{version}")
        ui.get_by_role("button", name="Move alias").click()
        ui.wait_for_function(
            f"document.querySelectorAll('table.history tbody tr').length === {count}"
        )
    newest = ui.locator("table.history tbody tr").first.inner_text()
    assert "champion" in newest and "v1" in newest and "v2" in newest
    assert ui.locator("table.aliases").inner_text().split() == ["champion", "v2"]
    newest_version = ui.locator("table.versions tbody tr").first.inner_text()
    assert newest_version.split()[:2] == ["v2", "champion"]  # the versions' aliases too
    ui.get_by_role("combobox", name="Alias").fill("latest")  # a name the registry refuses
    ui.get_by_role("button", name="Move alias").click()
    ui.wait_for_selector("#flash .error")
    assert "cannot be an alias" in ui.locator("#flash").inner_text()
    assert ui.get_by_role("combobox", name="Alias").input_value() == "latest"  # as typed
    ui.shot("model")
    ui.get_by_role("link", name="v2").first.click()
    ui.wait_for_selector("article.card")
    ui.shot("model-version")
