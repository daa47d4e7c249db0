"""Monitoring metrics equal their SciPy / scikit-learn references, and are None where undefined."""

from __future__ import annotations

import math
import warnings
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import chebyshev, jensenshannon

from cauce.monitoring.metrics import (
    METRICS,
    MetricInfo,
    chebyshev_distance,
    chi_squared,
    classification_metrics,
    frequencies,
    jensen_shannon,
    jensen_shannon_distance,
    ks_2samp,
    normalized_wasserstein,
    null_rate,
    out_of_bounds_rate,
    psi,
    regression_metrics,
    type_error_rate,
)

FAST = settings(max_examples=60, deadline=None)
counts = st.one_of(st.integers(0, 50), st.just(0.0), st.floats(0.01, 100))  # weighted counts
count_pairs = st.integers(1, 12).flatmap(
    lambda n: st.tuples(
        st.lists(counts, min_size=n, max_size=n), st.lists(counts, min_size=n, max_size=n)
    )
)
values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
samples = st.lists(values, min_size=1, max_size=40)


def close(expected: float) -> Any:
    return pytest.approx(expected, rel=1e-6, abs=1e-6)


def ref_js(p: Any, q: Any) -> float:
    with np.errstate(invalid="ignore"):  # scipy's sqrt of a rounding error below 0 is NaN
        return float(np.nan_to_num(jensenshannon(p, q, base=2)))


def ref_psi(p: Any, q: Any, epsilon: float = 1e-4) -> float:
    p, q = np.asarray(p, float) / np.sum(p), np.asarray(q, float) / np.sum(q)
    p, q = np.where(p == 0, epsilon, p), np.where(q == 0, epsilon, q)
    return float(np.sum((q - p) * np.log(q / p)))  # the textbook formula


def shares(c: Any) -> Any:
    return np.asarray(c, float) / np.sum(c)


# Distribution metrics over count vectors


def test_count_metrics_on_fixed_examples() -> None:
    ref, cur = [10, 20, 30, 40], [25, 25, 25, 25]
    assert jensen_shannon_distance(ref, cur) == close(ref_js(ref, cur))
    assert chebyshev_distance(ref, cur) == close(chebyshev(shares(ref), shares(cur)))
    assert chebyshev_distance(ref, cur) == close(0.15)
    # PSI by hand: p = .1 .2 .3 .4, q = .25 each
    by_hand = sum((0.25 - p) * math.log(0.25 / p) for p in (0.1, 0.2, 0.3, 0.4))
    assert psi(ref, cur) == close(by_hand) == close(ref_psi(ref, cur))
    assert psi(ref, cur) == pytest.approx(0.2282, abs=1e-4)  # .1374 + .0112 + .0091 + .0705
    statistic, p_value = chi_squared(ref, cur) or (None, None)
    expected = scipy.stats.chi2_contingency([ref, cur], correction=False)
    assert (statistic, p_value) == (close(expected.statistic), close(expected.pvalue))


def test_identical_and_disjoint_distributions() -> None:
    same = [3, 0, 7.5, 1]
    assert jensen_shannon_distance(same, same) == 0.0
    assert psi(same, same) == 0.0
    assert chebyshev_distance(same, [6, 0, 15, 2]) == close(0.0)
    assert chi_squared(same, same) == (0.0, 1.0)
    assert jensen_shannon_distance([1, 2, 0, 0], [0, 0, 5, 1]) == close(1.0)
    assert chebyshev_distance([1, 0], [0, 1]) == 1.0


def test_empty_sides_give_none() -> None:
    for metric in (jensen_shannon_distance, psi, chebyshev_distance, chi_squared):
        assert metric([], []) is None
        assert metric([0, 0], [1, 2]) is None
        assert metric([1, 2], [0, 0]) is None


def test_psi_with_zeros_on_one_side_uses_epsilon() -> None:
    ref, cur = [50, 50, 0], [40, 40, 20]  # the third category is new in current
    by_hand = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert psi(ref, cur) == close(by_hand)
    assert psi(cur, ref) == close(by_hand)  # PSI is symmetric
    assert psi(ref, cur, epsilon=1e-3) == close(ref_psi(ref, cur, 1e-3))
    assert psi([1, 0], [1, 0]) == 0.0  # empty on both sides: no contribution
    with pytest.raises(ValueError, match="epsilon"):
        psi(ref, cur, epsilon=0)


def test_categories_present_only_in_current() -> None:
    ref, cur = [5, 5, 0], [3, 3, 4]
    assert jensen_shannon_distance(ref, cur) == close(ref_js(ref, cur))
    assert chebyshev_distance(ref, cur) == close(0.4)
    result = chi_squared(ref, cur)
    expected = scipy.stats.chi2_contingency([ref, cur], correction=False)
    assert result == (close(expected.statistic), close(expected.pvalue))


def test_chi_squared_drops_categories_empty_on_both_sides() -> None:
    ref, cur = [10, 0, 5, 0], [4, 0, 9, 0]
    expected = scipy.stats.chi2_contingency([[10, 5], [4, 9]], correction=False)
    assert chi_squared(ref, cur) == (close(expected.statistic), close(expected.pvalue))
    assert chi_squared([3, 0], [5, 0]) is None  # one category left
    assert chi_squared([3], [5]) is None


def test_count_vectors_are_checked() -> None:
    with pytest.raises(ValueError, match="length"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        jensen_shannon_distance([1, -1], [1, 1])


@FAST
@given(count_pairs)
def test_count_metrics_match_references(pair: tuple[list[float], list[float]]) -> None:
    ref, cur = pair
    if sum(ref) == 0 or sum(cur) == 0:
        for metric in (jensen_shannon_distance, psi, chebyshev_distance, chi_squared):
            assert metric(ref, cur) is None
        return
    assert jensen_shannon_distance(ref, cur) == close(ref_js(ref, cur))
    assert psi(ref, cur) == close(ref_psi(ref, cur))
    assert chebyshev_distance(ref, cur) == close(chebyshev(shares(ref), shares(cur)))
    table = np.array([ref, cur], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    result = chi_squared(ref, cur)
    if table.shape[1] < 2:
        assert result is None
    else:
        expected = scipy.stats.chi2_contingency(table, correction=False)
        assert result == (close(expected.statistic), close(expected.pvalue))


# Wasserstein


def ref_wasserstein(ref: Any, cur: Any, rw: Any = None, cw: Any = None) -> float:
    return float(scipy.stats.wasserstein_distance(ref, cur, rw, cw))


def test_wasserstein_on_fixed_examples() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 2, 5000), rng.normal(0.5, 2, 7000)
    std = float(np.std(ref))
    expected = ref_wasserstein(ref, cur) / std
    assert normalized_wasserstein(ref, cur, ref_std=std) == close(expected)
    rw, cw = rng.random(5000), rng.random(7000)
    expected = ref_wasserstein(ref, cur, rw, cw) / 1.5
    got = normalized_wasserstein(ref, cur, ref_weights=rw, cur_weights=cw, ref_std=1.5)
    assert got == close(expected)
    assert normalized_wasserstein([0, 1, 3], [5, 6, 8], ref_std=2.0) == close(2.5)


@FAST
@given(samples, samples, st.booleans(), st.data())
def test_wasserstein_matches_scipy(
    ref: list[float], cur: list[float], weighted: bool, data: st.DataObject
) -> None:
    rw = cw = None
    if weighted:
        weight = st.floats(0, 10, allow_nan=False)
        rw = data.draw(st.lists(weight, min_size=len(ref), max_size=len(ref)))
        cw = data.draw(st.lists(weight, min_size=len(cur), max_size=len(cur)))
        assume(sum(rw) > 0 and sum(cw) > 0)
    std = float(np.std(ref)) or 1.0
    got = normalized_wasserstein(ref, cur, ref_weights=rw, cur_weights=cw, ref_std=std)
    assert got == close(ref_wasserstein(ref, cur, rw, cw) / std)


def test_wasserstein_constant_reference_uses_the_mixture_std() -> None:
    assert normalized_wasserstein([4, 4, 4], [4, 4], ref_std=0.0) == 0.0
    # a constant that moved to another constant: the mixture's std is half the gap
    assert normalized_wasserstein([4, 4, 4], [9, 9], ref_std=0.0) == close(2.0)
    assert normalized_wasserstein([1], [3], ref_std=0.0) == close(2.0)
    # 1% of rows moved by 1: distance 0.01, mixture variance 0.0099 / 2 + 0.01 ** 2 / 4
    cur = np.r_[np.zeros(99), 1.0]
    expected = 0.01 / math.sqrt(0.0099 / 2 + 0.01**2 / 4)
    assert normalized_wasserstein(np.zeros(1000), cur, ref_std=0.0) == close(expected)
    # units do not matter
    scaled = normalized_wasserstein(np.zeros(1000), cur * 1e-6, ref_std=0.0)
    assert scaled == close(expected)


@FAST
@given(st.floats(-100, 100), samples)
def test_wasserstein_constant_reference_is_at_most_2(level: float, cur: list[float]) -> None:
    got = normalized_wasserstein([level] * 5, cur, ref_std=0.0)
    assert got is not None and 0.0 <= got <= 2.0 + 1e-9


def test_wasserstein_edge_cases() -> None:
    assert normalized_wasserstein([], [1.0], ref_std=1.0) is None
    assert normalized_wasserstein([1.0], [np.nan, np.inf], ref_std=1.0) is None
    assert normalized_wasserstein([1.0], [2.0], ref_weights=[0.0], ref_std=1.0) is None
    assert normalized_wasserstein([1, np.nan, 3], [1, 3, np.inf], ref_std=1.0) == 0.0
    assert normalized_wasserstein([2.5], [2.5], ref_std=0.0) == 0.0
    with pytest.raises(ValueError, match="ref_std"):
        normalized_wasserstein([1.0], [2.0], ref_std=-1.0)
    with pytest.raises(ValueError, match="weights"):
        normalized_wasserstein([1.0], [2.0], cur_weights=[1.0, 2.0], ref_std=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        normalized_wasserstein([1.0], [2.0], cur_weights=[-1.0], ref_std=1.0)


# Kolmogorov-Smirnov


def assert_ks_matches(ref: Any, cur: Any) -> None:
    ref = np.sort(np.asarray(ref, float))
    with warnings.catch_warnings():  # exact p-value rounding past 1: SciPy falls back, warning
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        expected = scipy.stats.ks_2samp(ref, cur)
    assert ks_2samp(ref, cur) == (close(expected.statistic), close(expected.pvalue))


@FAST
@given(samples, samples)
def test_ks_matches_scipy_on_small_samples(ref: list[float], cur: list[float]) -> None:
    assert_ks_matches(ref, cur)


@FAST
@given(
    st.integers(0, 2**32 - 1),
    st.integers(10_001, 30_000),
    st.integers(1, 12_000),
    st.sampled_from(["normal", "ties", "shifted ties"]),
    st.booleans(),
)
def test_ks_matches_scipy_on_asymptotic_samples(
    seed: int, large: int, small: int, kind: str, ref_is_large: bool
) -> None:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        a, b = rng.normal(0, 1, large), rng.normal(0.05, 1, small)
    else:
        a = rng.integers(0, 8, large).astype(float)
        b = rng.integers(1 if kind == "shifted ties" else 0, 8, small).astype(float)
    ref, cur = (a, b) if ref_is_large else (b, a)
    assert_ks_matches(ref, cur)


def test_ks_on_a_million_values_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    ref, cur = np.sort(rng.normal(size=20_000)), rng.normal(0.01, 1, 1_000_000)
    assert_ks_matches(ref, cur)


def test_ks_edge_cases() -> None:
    assert ks_2samp([], [1.0]) is None
    assert ks_2samp([1.0], [np.nan]) is None
    assert ks_2samp([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (0.0, 1.0)
    assert ks_2samp(np.full(20_000, 3.0), np.full(15_000, 3.0)) == (0.0, 1.0)
    assert ks_2samp(np.full(20_000, 3.0), np.full(15_000, 4.0)) == (1.0, close(0.0))
    assert_ks_matches([5.0], [6.0])
    ref, cur = np.arange(20_000.0), np.r_[np.arange(20_000.0), np.nan]
    assert ks_2samp(np.r_[ref, np.nan], cur) == (0.0, 1.0)
    assert_ks_matches(ref, [-np.inf, 5.0, np.inf])


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


# Model performance


def sklearn_classification(truth: Any, predicted: Any, score: Any, positive: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"pos_label": positive, "zero_division": 0}
    actual = np.asarray(truth) == positive
    return {
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted, **kw),
        "recall": skm.recall_score(truth, predicted, **kw),
        "f1": skm.f1_score(truth, predicted, **kw),
        "roc_auc": skm.roc_auc_score(actual, score) if 0 < actual.sum() < len(actual) else None,
    }


def assert_classification_matches(truth: Any, predicted: Any, score: Any, positive: Any) -> None:
    got = classification_metrics(truth, predicted, score, positive=positive)
    expected = sklearn_classification(truth, predicted, score, positive)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == (None if value is None else close(value)), name


def test_classification_metrics_on_fixed_examples() -> None:
    truth = [1, 0, 1, 1, 0, 0, 1, 0]
    predicted = [1, 0, 0, 1, 1, 0, 1, 0]
    score = [0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.7, 0.4]
    assert_classification_matches(truth, predicted, score, 1)
    got = classification_metrics(truth, predicted, score)
    assert got == {"accuracy": 0.75, "precision": 0.75, "recall": 0.75, "f1": 0.75,
                   "roc_auc": close(14.5 / 16)}  # fmt: skip
    labels = {1: "yes", 0: "no"}
    words = [[labels[v] for v in column] for column in (truth, predicted)]
    assert_classification_matches(words[0], words[1], score, "yes")
    assert classification_metrics(truth, predicted)["roc_auc"] is None


@FAST
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from([0.1, 0.5, 0.9])))
    | st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.floats(0, 1)), min_size=1)
)
def test_classification_metrics_match_sklearn(rows: list[tuple[int, int, float]]) -> None:
    if not rows:
        got = classification_metrics([], [], [])
        assert got == dict.fromkeys(["accuracy", "precision", "recall", "f1", "roc_auc"])
        return
    truth, predicted, score = (list(c) for c in zip(*rows, strict=True))
    assert_classification_matches(truth, predicted, score, 1)
    assert_classification_matches(truth, predicted, score, 0)


def test_classification_metrics_edge_cases() -> None:
    assert classification_metrics([1, 1], [1, 0], [0.9, 0.3])["roc_auc"] is None  # one class
    assert classification_metrics([0, 0], [0, 0]) == {
        "accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "roc_auc": None
    }  # fmt: skip
    # rows whose label has not arrived yet are left out
    got = classification_metrics([1, None, 0], [1, 1, 0], [0.8, 0.7, np.nan])
    assert got == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": None}
    got = classification_metrics([1, None, 0], [1, 1, 0], [0.8, 0.7, 0.1])
    assert got["roc_auc"] == 1.0
    with pytest.raises(ValueError, match="length"):
        classification_metrics([1, 0], [1])


@FAST
@given(st.lists(st.tuples(values, values)))
def test_regression_metrics_match_sklearn(rows: list[tuple[float, float]]) -> None:
    if not rows:
        assert regression_metrics([], []) == {"mae": None, "rmse": None}
        return
    truth, predicted = (list(c) for c in zip(*rows, strict=True))
    got = regression_metrics(truth, predicted)
    assert got["mae"] == close(skm.mean_absolute_error(truth, predicted))
    assert got["rmse"] == close(math.sqrt(skm.mean_squared_error(truth, predicted)))


def test_regression_metrics_drop_missing_rows() -> None:
    got = regression_metrics([1.0, np.nan, 3.0, 5.0], [2.0, 1.0, None, 5.0])
    assert got == {"mae": 0.5, "rmse": close(math.sqrt(0.5))}
    assert regression_metrics([np.nan], [1.0]) == {"mae": None, "rmse": None}
    assert regression_metrics([2.0], [2.0]) == {"mae": 0.0, "rmse": 0.0}


# Registry and the sample-level distance


def test_metric_registry() -> None:
    assert set(METRICS) == {"jensen_shannon", "normalized_wasserstein", "psi", "ks",
                            "chi_squared", "chebyshev"}  # fmt: skip
    for name, info in METRICS.items():
        assert isinstance(info, MetricInfo) and info.name == name and info.description
        assert set(info.kinds) <= {"numerical", "categorical"} and info.kinds
    assert not METRICS["ks"].higher_is_drift and not METRICS["chi_squared"].higher_is_drift
    assert METRICS["psi"].higher_is_drift and "categorical" in METRICS["chebyshev"].kinds
    assert METRICS["normalized_wasserstein"].kinds == ("numerical",)


def test_sample_jensen_shannon_agrees_with_the_count_version() -> None:
    ref, cur = ["a", "b", "b", "c"], ["b", "c", "c", "d"]
    p, q = frequencies(ref, cur)
    assert jensen_shannon(ref, cur) == close(jensen_shannon_distance(p, q) or 0.0)
    assert jensen_shannon(ref, cur) == close(ref_js(p, q))
    assert jensen_shannon([], [1.0, 2.0]) is None


def test_type_errors_in_pandas_dtypes() -> None:
    assert type_error_rate(pd.Series([1.5, None], dtype="Float64"), "numerical") == 0.0
    assert type_error_rate(pd.Series([True, None], dtype="boolean"), "numerical") == 1.0
    assert type_error_rate(pd.Series([True, None], dtype="boolean"), "categorical") == 0.0
    assert type_error_rate(np.array([1 + 2j]), "numerical") == 1.0
    assert type_error_rate(np.array([1 + 2j]), "categorical") == 1.0
    assert type_error_rate(pd.Series([1.0, 2.5], dtype="category"), "categorical") == 0.5
