"""What monitors measure beyond cauce.stats: data-quality rates, and the drift metrics a spec names.

The distances, tests and model-quality metrics are tested in tests/test_stats.py.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauce.monitoring.metrics import (
    METRICS,
    MetricInfo,
    null_rate,
    out_of_bounds_rate,
    type_error_rate,
)

FAST = settings(max_examples=60, deadline=None)
values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def close(expected: float) -> Any:
    return pytest.approx(expected, rel=1e-6, abs=1e-6)


# Data quality


def test_null_rate() -> None:
    assert null_rate([]) is None
    assert null_rate(np.array([], dtype=float)) is None
    assert null_rate([1.0, None, np.nan, 4.0]) == 0.5
    assert null_rate(pd.Series(["a", None, pd.NA, "b"])) == 0.5
    assert null_rate(pd.Series([1, None], dtype="Int64")) == 0.5
    assert null_rate(np.array([np.inf, 1.0])) == 0.0
    assert null_rate([None, None]) == 1.0


@FAST
@given(st.lists(st.one_of(values, st.none(), st.just(math.nan), st.text(max_size=3))))
def test_null_rate_counts_nones_and_nans(items: list[Any]) -> None:
    nulls = sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in items)
    assert null_rate(items) == (close(nulls / len(items)) if items else None)


def test_type_errors_in_numerical_columns() -> None:
    column = [1, 2.5, "3.5", "1e3", np.int64(4), Decimal("1.5"), "abc", True, "", "nan", [1]]
    assert type_error_rate([*column, None, np.nan], "numerical") == close(5 / 11)
    assert type_error_rate(np.array([1.0, np.nan, 3.0]), "numerical") == 0.0
    assert type_error_rate(pd.Series([1, None], dtype="Int64"), "numerical") == 0.0
    assert type_error_rate(np.array([True, False]), "numerical") == 1.0
    assert type_error_rate(pd.Series(pd.to_datetime(["2024-01-01"])), "numerical") == 1.0
    assert type_error_rate(pd.Series(["1", "x"], dtype="category"), "numerical") == 0.5
    assert type_error_rate(pd.Series(["1", "x"], dtype="string"), "numerical") == 0.5


def test_type_errors_in_categorical_columns() -> None:
    column = ["a", True, np.bool_(False), 3, np.int64(2), 2.0, 2.5, math.inf, {"a": 1}]
    assert type_error_rate([*column, None], "categorical") == close(3 / 9)
    assert type_error_rate(np.array([1.0, 2.5, np.inf, np.nan]), "categorical") == close(2 / 3)
    assert type_error_rate(np.array([1, 2, 3]), "categorical") == 0.0
    assert type_error_rate(pd.Series(["a", "b"], dtype="category"), "categorical") == 0.0
    assert type_error_rate(pd.Series(pd.to_datetime(["2024-01-01"])), "categorical") == 1.0


def test_type_error_rate_edge_cases() -> None:
    assert type_error_rate([], "numerical") is None
    assert type_error_rate([None, np.nan], "categorical") is None
    assert type_error_rate([7.0], "numerical") == 0.0
    with pytest.raises(ValueError, match="expected"):
        type_error_rate([1], "text")


@FAST
@given(st.lists(st.one_of(values, st.integers(-5, 5), st.booleans(), st.text(max_size=4))))
def test_type_error_rate_follows_the_rule(items: list[Any]) -> None:
    def numerical_error(v: Any) -> bool:
        if isinstance(v, bool):
            return True
        return isinstance(v, str) and math.isnan(pd.to_numeric(pd.Series([v]), errors="coerce")[0])

    def categorical_error(v: Any) -> bool:
        return isinstance(v, float) and not v.is_integer()

    if not items:
        assert type_error_rate(items, "numerical") is None
        return
    expected = sum(map(numerical_error, items)) / len(items)
    assert type_error_rate(items, "numerical") == close(expected)
    expected = sum(map(categorical_error, items)) / len(items)
    assert type_error_rate(items, "categorical") == close(expected)


def test_out_of_bounds_rate() -> None:
    column = [0.0, 5.0, 10.0, 11.0, -1.0, None, np.nan, np.inf]
    assert out_of_bounds_rate(column, low=0, high=10) == close(3 / 6)
    assert out_of_bounds_rate(column, low=0) == close(1 / 6)
    assert out_of_bounds_rate(column, high=10) == close(2 / 6)
    assert out_of_bounds_rate(column) == 0.0
    assert out_of_bounds_rate(["1", "20", "abc"], high=10) == close(1 / 3)  # "abc": type error
    assert out_of_bounds_rate(["a", "b", "c", None], allowed=["a", "b"]) == close(1 / 3)
    assert out_of_bounds_rate([1, 2, 3], allowed=["1", "2"]) == close(1 / 3)  # read as text
    assert out_of_bounds_rate([], low=0) is None
    assert out_of_bounds_rate([None], allowed=["a"]) is None
    with pytest.raises(ValueError, match="not both"):
        out_of_bounds_rate([1], low=0, allowed=[1])


@FAST
@given(st.lists(st.one_of(values, st.none())), values, values)
def test_out_of_bounds_rate_matches_a_direct_count(items: list[Any], a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    present = [v for v in items if v is not None]
    expected = sum(not low <= v <= high for v in present) / len(present) if present else None
    got = out_of_bounds_rate(items, low=low, high=high)
    assert got == (close(expected) if expected is not None else None)


# The drift metrics a monitor spec names


def test_metric_registry() -> None:
    assert set(METRICS) == {"jensen_shannon", "normalized_wasserstein", "psi", "ks",
                            "chi_squared", "chebyshev"}  # fmt: skip
    for name, info in METRICS.items():
        assert isinstance(info, MetricInfo) and info.name == name and info.description
        assert set(info.kinds) <= {"numerical", "categorical"} and info.kinds
    assert not METRICS["ks"].higher_is_drift and not METRICS["chi_squared"].higher_is_drift
    assert METRICS["psi"].higher_is_drift and "categorical" in METRICS["chebyshev"].kinds
    assert METRICS["normalized_wasserstein"].kinds == ("numerical",)


def test_type_errors_in_pandas_dtypes() -> None:
    assert type_error_rate(pd.Series([1.5, None], dtype="Float64"), "numerical") == 0.0
    assert type_error_rate(pd.Series([True, None], dtype="boolean"), "numerical") == 1.0
    assert type_error_rate(pd.Series([True, None], dtype="boolean"), "categorical") == 0.0
    assert type_error_rate(np.array([1 + 2j]), "numerical") == 1.0
    assert type_error_rate(np.array([1 + 2j]), "categorical") == 1.0
    assert type_error_rate(pd.Series([1.0, 2.5], dtype="category"), "categorical") == 0.5
