"""Drift and data quality against a reference profile, checked against SciPy on the same bins.

Every value is computed on the reference's binning, so the reference implementation is run on
the binned samples: each grid bin's values taken at the bin's centre (Wasserstein, KS), or the
counts per drift bin (Jensen-Shannon, PSI, Chebyshev), or per category (chi-squared).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import chebyshev, jensenshannon

from cauce.errors import InvalidInput
from cauce.monitoring import drift
from cauce.monitoring.metrics import type_error_rate
from cauce.monitoring.profiles import GRID_BINS, NumericalProfile, build_profile, profile_current

NUMERICAL = ("normalized_wasserstein", "jensen_shannon", "psi", "ks", "chebyshev")
CATEGORICAL = ("jensen_shannon", "psi", "chi_squared", "chebyshev")


def grid_index(values: np.ndarray, ref: NumericalProfile) -> np.ndarray:
    """The documented binning: floor((x - lo) / width), the maximum in the last grid bin."""
    index = np.floor((values - ref.lo) / ref.width).astype(np.int64)
    assert ref.max is not None
    inside = (values >= ref.lo) & (values <= max(ref.lo + ref.width * GRID_BINS, ref.max))
    index[inside] = np.minimum(index[inside], GRID_BINS - 1)
    return index


def binned(values: np.ndarray, ref: NumericalProfile) -> np.ndarray:
    """Each value replaced by its grid bin's centre."""
    return ref.lo + (grid_index(values, ref) + 0.5) * ref.width


def drift_bin_counts(values: np.ndarray, ref: NumericalProfile) -> np.ndarray:
    """Counts per drift bin; values beyond the reference's range in the end bins."""
    starts = np.asarray(ref.starts)
    bins = np.clip(np.searchsorted(starts, grid_index(values, ref), "right") - 1, 0, None)
    return np.bincount(bins, minlength=len(starts))


def one(
    metric: str, reference: pd.DataFrame, current: pd.DataFrame, **kw: object
) -> drift.FeatureValue:
    profile = build_profile(reference)
    name = reference.columns[0]
    kind = profile.columns[name].kind
    report = drift.data_drift(profile, current, **{kind: metric}, **kw)  # type: ignore[arg-type]
    (value,) = report.features
    return value


@pytest.fixture(scope="module")
def normal() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(0, 1, 3000), rng.normal(0.3, 1.2, 2000)


def test_normalized_wasserstein_equals_scipy_on_the_binned_samples(normal) -> None:
    ref, cur = normal
    profile = build_profile(pd.DataFrame({"x": ref}))
    col = profile.columns["x"]
    assert isinstance(col, NumericalProfile)
    value = one("normalized_wasserstein", pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    # The weighted form the module docstring names: bin centres with the counts as weights.
    centres = col.lo + (np.arange(-400, GRID_BINS + 400) + 0.5) * col.width
    ref_counts = np.bincount(grid_index(ref, col) + 400, minlength=len(centres))
    cur_counts = np.bincount(grid_index(cur, col) + 400, minlength=len(centres))
    expected = scipy.stats.wasserstein_distance(centres, centres, ref_counts, cur_counts) / np.std(
        ref
    )
    assert value.value == pytest.approx(expected, rel=1e-9)
    assert value.value == pytest.approx(
        scipy.stats.wasserstein_distance(binned(ref, col), binned(cur, col)) / np.std(ref),
        rel=1e-9,
    )
    # The grid is fine enough that the raw data give nearly the same number.
    raw = scipy.stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert abs(value.value - raw) < 0.02
    assert value.outcome == "breached" and value.threshold == 0.1


@pytest.mark.parametrize(("n", "m"), [(3000, 2000), (12000, 11000)], ids=["exact", "asymptotic"])
def test_ks_equals_scipy_on_the_binned_samples(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    ref, cur = rng.normal(0, 1, n), rng.normal(0.05, 1, m)
    col = build_profile(pd.DataFrame({"x": ref})).columns["x"]
    assert isinstance(col, NumericalProfile)
    value = one("ks", pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    expected = scipy.stats.ks_2samp(binned(ref, col), binned(cur, col))
    assert value.details["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert value.value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    # A p-value breaches below its threshold.
    assert value.threshold == 0.05
    assert value.outcome == ("breached" if expected.pvalue < 0.05 else "passed")


def test_ks_of_a_shift_breaches_and_of_the_same_distribution_passes() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 2000)})
    assert one("ks", ref, pd.DataFrame({"x": rng.normal(1, 1, 500)})).outcome == "breached"
    assert one("ks", ref, pd.DataFrame({"x": rng.normal(0, 1, 500)})).outcome == "passed"


def test_bin_distances_equal_scipy_over_the_drift_bins(normal) -> None:
    ref, cur = normal
    col = build_profile(pd.DataFrame({"x": ref})).columns["x"]
    assert isinstance(col, NumericalProfile)
    p, q = drift_bin_counts(ref, col), drift_bin_counts(cur, col)
    assert p.tolist() == col.drift_counts().tolist()
    js = one("jensen_shannon", pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    assert js.value == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    assert js.details["distribution"]["reference"] == p.tolist()
    assert js.details["distribution"]["current"] == q.tolist()
    assert len(js.details["distribution"]["edges"]) == len(p) + 1
    cheb = one("chebyshev", pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    assert cheb.value == pytest.approx(chebyshev(p / p.sum(), q / q.sum()), rel=1e-9)
    psi = one("psi", pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    a, b = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
    assert psi.value == pytest.approx(float(np.sum((b - a) * np.log(b / a))), rel=1e-9)


def test_categorical_metrics_equal_scipy_over_the_union_of_categories() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 1000, p=[0.4, 0.3, 0.3])})
    p = ref["c"].value_counts().reindex(["a", "b", "c"]).to_numpy()
    q = cur["c"].value_counts().reindex(["a", "b", "c"]).to_numpy()
    js = one("jensen_shannon", ref, cur)
    assert js.kind == "categorical"
    assert js.value == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    chi = one("chi_squared", ref, cur)
    expected = scipy.stats.chi2_contingency([p, q], correction=False)
    assert chi.details["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert chi.value == pytest.approx(expected.pvalue, rel=1e-9)
    assert chi.outcome == "breached"
    cheb = one("chebyshev", ref, cur)
    assert cheb.value == pytest.approx(chebyshev(p / p.sum(), q / q.sum()), rel=1e-9)


def test_categories_never_seen_in_the_reference() -> None:
    ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    cur = pd.DataFrame({"c": ["a"] * 40 + ["b"] * 40 + ["new"] * 20})
    profile = build_profile(ref)
    js = one("jensen_shannon", ref, cur)
    p, q = np.array([50, 50, 0]), np.array([40, 40, 20])
    assert js.value == pytest.approx(jensenshannon(p, q, base=2)) and js.value > 0
    assert js.details["unseen_categories"] == ["new"]
    (oob,) = drift.data_quality(profile, cur, {"out_of_bounds_rate": 0.1})
    assert (oob.value, oob.outcome) == (pytest.approx(0.2), "breached")
    assert oob.details["unseen_categories"] == ["new"]


def test_numerical_out_of_bounds_and_type_errors() -> None:
    profile = build_profile(pd.DataFrame({"x": np.linspace(0, 10, 101)}))
    cur = pd.DataFrame({"x": pd.Series([1, 2, 11, -1, "abc", None, np.inf, 5, 5, 5], dtype=object)})
    found = {
        v.metric: v
        for v in drift.data_quality(
            profile, cur, {"null_rate": 0.0, "type_error_rate": 0.0, "out_of_bounds_rate": 0.5}
        )
    }
    assert found["null_rate"].value == pytest.approx(0.1)
    assert found["null_rate"].outcome == "breached"
    assert found["type_error_rate"].value == pytest.approx(1 / 9)
    # Values outside [0, 10] and infinities are out of bounds: 11, -1, inf of 8 valued.
    assert found["out_of_bounds_rate"].value == pytest.approx(3 / 8)
    assert found["out_of_bounds_rate"].outcome == "passed"


def test_categorical_type_errors_follow_the_metrics_rule() -> None:
    profile = build_profile(pd.DataFrame({"c": ["a", "b"] * 50}))
    values = ["a", "b", 2.5, {"x": 1}, "a", None, 3, True]
    cur = pd.DataFrame({"c": pd.Series(values, dtype=object)})
    (found,) = drift.data_quality(profile, cur, {"type_error_rate": 0.0})
    # 2.5 and the dict are no category; 3 and True are (integral numbers, booleans).
    assert found.value == pytest.approx(type_error_rate(values, "categorical"))
    assert found.value == pytest.approx(2 / 7) and found.outcome == "breached"


def test_an_empty_window_computes_nothing_and_says_why() -> None:
    profile = build_profile(pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50}))
    empty = pd.DataFrame({"x": pd.Series([], dtype=float), "c": pd.Series([], dtype=object)})
    report = drift.data_drift(profile, empty)
    assert report.rows == 0 and report.drifted_share is None and report.dataset_drift is None
    for value in report.features:
        assert value.value is None and value.outcome == "not_computed"
        assert value.drifted is None
        assert value.details["reason"] == "the current window is empty"
    for value in drift.data_quality(profile, empty, {"null_rate": 0.0}):
        assert value.outcome == "not_computed" and "empty" in value.details["reason"]


def test_a_column_missing_from_the_window() -> None:
    profile = build_profile(pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)}))
    current = pd.DataFrame({"y": np.arange(100.0)})
    report = drift.data_drift(profile, current)
    x = next(f for f in report.features if f.name == "x")
    assert (x.value, x.outcome) == (None, "not_computed")
    assert x.details["reason"] == "the column is missing from the current window"
    assert report.drifted_share == 0.0  # y, the only computed feature, did not drift
    null = next(
        v for v in drift.data_quality(profile, current, {"null_rate": 0.0}) if v.name == "x"
    )
    assert (null.value, null.outcome) == (1.0, "breached")


def test_every_column_missing_from_a_window_with_rows_is_all_nulls_not_an_empty_window() -> None:
    """Counted columns cannot tell how many rows a window has when all are missing: ``rows``."""
    profile = build_profile(pd.DataFrame({"x": np.arange(100.0)}))
    counted = profile_current(profile, pd.DataFrame({"other": [1, 2, 3]}))
    (null,) = drift.data_quality(profile, counted, {"null_rate": 0.0}, rows=3)
    assert (null.value, null.outcome) == (1.0, "breached")
    (x,) = drift.data_drift(profile, counted, rows=3).features
    assert x.details["reason"] == "the column is missing from the current window"


def test_an_all_null_current_column() -> None:
    profile = build_profile(pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50}))
    current = pd.DataFrame({"x": [np.nan] * 10, "c": pd.Series([None] * 10, dtype=object)})
    for value in drift.data_drift(profile, current).features:
        assert value.outcome == "not_computed"
        assert value.details["reason"] == "the current window has no values in this column"
    quality = drift.data_quality(profile, current, {"null_rate": 0.5, "out_of_bounds_rate": 0.0})
    rates = {(v.name, v.metric): v for v in quality}
    assert rates["x", "null_rate"].value == 1.0 and rates["x", "null_rate"].outcome == "breached"
    assert rates["c", "null_rate"].value == 1.0
    assert rates["x", "out_of_bounds_rate"].outcome == "not_computed"
    assert rates["c", "out_of_bounds_rate"].outcome == "not_computed"


def test_an_all_null_reference_column() -> None:
    profile = build_profile(pd.DataFrame({"x": [np.nan] * 20, "y": np.arange(20.0)}))
    current = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0)})
    report = drift.data_drift(profile, current)
    x = next(f for f in report.features if f.name == "x")
    assert x.outcome == "not_computed"
    assert x.details["reason"] == "the reference has no values in this column"
    quality = drift.data_quality(profile, current, {"null_rate": 0.0, "out_of_bounds_rate": 0.0})
    rates = {(v.name, v.metric): v for v in quality}
    assert rates["x", "null_rate"].value == 0.0
    assert rates["x", "out_of_bounds_rate"].outcome == "not_computed"
    assert "reference has no values" in rates["x", "out_of_bounds_rate"].details["reason"]


def test_a_constant_reference_column_is_scaled_by_the_mixture_std() -> None:
    """Std 0: unchanged is 0, a constant that moved to another constant is 2, whatever units."""
    ref = pd.DataFrame({"x": [5.0] * 200})
    assert one("normalized_wasserstein", ref, pd.DataFrame({"x": [5.0] * 50})).value == 0.0
    moved = one("normalized_wasserstein", ref, pd.DataFrame({"x": [6.0] * 50}))
    assert moved.value == pytest.approx(2.0) and moved.outcome == "breached"
    far = one("normalized_wasserstein", ref, pd.DataFrame({"x": [5000.0] * 50}))
    assert far.value == pytest.approx(2.0)
    half = one("normalized_wasserstein", ref, pd.DataFrame({"x": [5.0] * 25 + [6.0] * 25}))
    assert 0 < half.value < 2 and math.isfinite(half.value)
    (oob,) = drift.data_quality(build_profile(ref), pd.DataFrame({"x": [5.0, 6.0]}), {
        "out_of_bounds_rate": 0.0})  # fmt: skip
    assert oob.value == 0.5


def test_a_single_row_window_is_judged() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 1000), "c": rng.choice(["a", "b"], 1000)})
    profile = build_profile(ref)
    single = pd.DataFrame({"x": [0.1], "c": ["a"]})
    for numerical in NUMERICAL:
        (x, c) = drift.data_drift(profile, single, numerical=numerical).features
        assert x.value is not None and math.isfinite(x.value)
        assert x.outcome in ("passed", "breached")
    for categorical in CATEGORICAL:
        (_, c) = drift.data_drift(profile, single, categorical=categorical).features
        if categorical == "chi_squared":
            assert c.value is not None and 0 <= c.value <= 1
        else:
            assert c.value is not None and math.isfinite(c.value)


def test_thresholds_per_feature_and_the_drifted_share() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000)})
    cur = pd.DataFrame({"a": rng.normal(0.5, 1, 1000), "b": rng.normal(0.05, 1, 1000)})
    profile = build_profile(ref)
    report = drift.data_drift(profile, cur, threshold=0.2, drift_share=0.5)
    assert report.drifted == ["a"] and report.drifted_share == 0.5 and report.dataset_drift
    strict = drift.data_drift(profile, cur, threshold=0.2, thresholds={"b": 0.001})
    assert strict.drifted == ["a", "b"]
    assert [f.threshold for f in strict.features] == [0.2, 0.001]
    only_b = drift.data_drift(profile, cur, features=["b"])
    assert [f.name for f in only_b.features] == ["b"]
    assert drift.data_drift(profile, cur, features=[]).features == []


def test_bad_arguments_raise_invalid_input_naming_the_field() -> None:
    profile = build_profile(pd.DataFrame({"x": np.arange(10.0)}))
    current = pd.DataFrame({"x": np.arange(10.0)})
    cases = [
        ({"numerical": "chi_squared"}, "numerical"),
        ({"categorical": "ks"}, "categorical"),
        ({"thresholds": {"nope": 0.1}}, "thresholds"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as caught:
            drift.data_drift(profile, current, **kwargs)  # type: ignore[arg-type]
        assert caught.value.details["field"] == field
    with pytest.raises(InvalidInput) as caught:
        drift.data_quality(profile, current, {"missing_rate": 0.1})
    assert "missing_rate" in str(caught.value)


values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)


@settings(max_examples=50, deadline=None)
@given(numbers=values, labels=st.lists(st.sampled_from("abcd"), min_size=1, max_size=200))
def test_identical_reference_and_current_never_drift(
    numbers: list[float], labels: list[str]
) -> None:
    size = min(len(numbers), len(labels))
    data = pd.DataFrame({"x": numbers[:size], "c": labels[:size]})
    profile = build_profile(data, columns={"x": "numerical", "c": "categorical"})
    for numerical, categorical in zip(NUMERICAL, CATEGORICAL[:3] + ("chebyshev",) * 2, strict=True):
        report = drift.data_drift(profile, data, numerical=numerical, categorical=categorical)
        assert report.drifted == [] and report.dataset_drift is False
        for value in report.features:
            if value.metric == "chi_squared" and len(set(data["c"])) == 1:
                assert value.outcome == "not_computed"  # one category: no test to run
                assert value.details["reason"] == "fewer than two categories"
                continue
            assert value.value is not None
            if value.metric in drift.P_VALUE_METRICS:
                assert value.value == pytest.approx(1.0)
            else:
                assert value.value == pytest.approx(0.0, abs=1e-9)
    quality = drift.data_quality(profile, data, {"out_of_bounds_rate": 0.0, "null_rate": 0.0})
    assert all(v.outcome == "passed" and v.value == 0.0 for v in quality)


@settings(max_examples=40, deadline=None)
@given(ref=values, cur=values)
def test_values_are_finite_or_not_computed_never_nan(ref: list[float], cur: list[float]) -> None:
    profile = build_profile(pd.DataFrame({"x": ref}))
    for metric in NUMERICAL:
        (value,) = drift.data_drift(profile, pd.DataFrame({"x": cur}), numerical=metric).features
        assert value.value is not None and math.isfinite(value.value)
        assert value.value >= 0
