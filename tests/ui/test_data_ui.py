"""Data in a real browser: a dataset's versions, its profile drawn, a failed check's rows."""

from __future__ import annotations

from typing import Any

import pytest

import cauce
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


def test_a_dataset_page_shows_its_profile_and_the_rows_a_check_failed(
    ui: Any, remote_workspace: Workspace
) -> None:
    import numpy as np
    import pandas as pd

    from cauce.data.checks import validate

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 12, 500).round(), "plan": rng.choice(
        ["basic", "plus", "pro", None], 500, p=[0.5, 0.3, 0.19, 0.01])})  # fmt: skip
    cauce.data.register("customers", frame)
    checks = [{"not_null": {"column": "plan"}}, {"range": {"column": "age", "min": 0}}]
    suite = {"kind": "CheckSuite", "name": "customers-bar", "checks": checks}
    validate("customers@1", suite, raise_on_failure=False)
    ui.goto(ui.at("/ui/datasets"))
    # A column of numbers is headed over its numbers, on the right; a column of names, left.
    heads = ui.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('table.grid thead th')]"
        ".map((th) => [th.textContent.trim(), getComputedStyle(th).textAlign]))"
    )
    assert (heads["Rows"], heads["Columns"], heads["Name"]) == ("right", "right", "left")
    ui.get_by_role("link", name="customers").click()
    ui.wait_for_selector("svg.histogram rect")
    assert ui.locator("svg.histogram rect").count() > 5
    assert "basic" in ui.locator("table.top").inner_text()
    failing = ui.locator("tr.failing").first.inner_text()
    assert "not_null" in failing
    assert ui.locator("table.sample tbody tr").count() >= 1
    ui.shot("dataset")
