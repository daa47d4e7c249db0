"""``cauce.data.diff``: schema and statistics changes between two versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cauce
from cauce.workspace import Workspace


def test_diff_reports_schema_and_statistics(any_workspace: Workspace) -> None:
    rng = np.random.default_rng(5)
    one = pd.DataFrame(
        {
            "id": np.arange(100),
            "amount": rng.normal(10.0, 2.0, 100),
            "country": rng.choice(["es", "fr"], 100),
            "legacy": 1,
        }
    )
    two = pd.DataFrame(
        {
            "id": np.arange(150).astype("float64"),
            "amount": rng.normal(12.0, 3.0, 150),
            "country": rng.choice(["es", "fr", "de", None], 150),
            "channel": "web",
        }
    )
    cauce.data.register("orders", one)
    cauce.data.register("orders", two, allow_schema_change=True)

    found = cauce.data.diff("orders@1", "orders@2")
    assert found.before == "orders@1" and found.after == "orders@2"
    assert found.schema_changed
    assert found.schema == {
        "added": {"channel": "str"},
        "removed": {"legacy": "int64"},
        "type_changed": {"id": {"from": "int64", "to": "float64"}},
    }
    assert found.row_count == {"from": 100, "to": 150, "change": 50}
    assert set(found.columns) == {"id", "amount", "country"}
    amount = found.columns["amount"]
    assert amount["mean"]["from"] == pytest.approx(one["amount"].mean())
    assert amount["mean"]["to"] == pytest.approx(two["amount"].mean())
    assert amount["mean"]["change"] == pytest.approx(two["amount"].mean() - one["amount"].mean())
    assert amount["std"]["to"] == pytest.approx(two["amount"].std())
    country = found.columns["country"]
    assert country["null_rate"]["from"] == 0.0
    assert country["null_rate"]["to"] == pytest.approx(two["country"].isna().mean())
    assert country["distinct_count"] == {
        "from": 2, "to": two["country"].nunique(), "change": two["country"].nunique() - 2
    }  # fmt: skip
    assert country["mean"] == {"from": None, "to": None, "change": None}
    as_dict = found.to_dict()
    assert as_dict["schema_changed"] is True and as_dict["row_count"]["change"] == 50


def test_diff_of_identical_schemas_and_across_datasets(workspace: Workspace) -> None:
    a = cauce.data.register("a", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    b = cauce.data.register("b", pd.DataFrame({"x": [1.0, 2.0, 5.0, None]}))
    found = cauce.data.diff(a, b)  # versions themselves, and of different datasets
    assert not found.schema_changed
    assert found.columns["x"]["null_rate"] == {"from": 0.0, "to": 0.25, "change": 0.25}
    assert found.columns["x"]["mean"]["change"] == pytest.approx(8 / 3 - 2)
