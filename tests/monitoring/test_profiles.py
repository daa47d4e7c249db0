"""Reference profiles: statistics equal NumPy's, the fine grid and drift bins are as documented.

A profile summarises a numerical column on ``GRID_BINS`` uniform bins between its minimum and
maximum, and groups neighbouring grid bins into drift bins of about equal reference mass; a
current window is counted on the reference's grid, values outside its range included.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauce.errors import InvalidInput
from cauce.monitoring.profiles import (
    GRID_BINS,
    QUANTILES,
    CategoricalProfile,
    CurrentNumerical,
    NumericalProfile,
    Profile,
    build_profile,
    column_kinds,
    current_numerical,
    profile_current,
)


def frame(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    charges = rng.normal(70, 20, rows)
    charges[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "charges": charges,
            "tenure": rng.integers(1, 72, rows),
            "contract": rng.choice(["monthly", "yearly", "two-year"], rows),
            "seats": rng.integers(1, 4, rows),  # few distinct integers: categorical
            "active": rng.random(rows) < 0.5,
        }
    )


def grid_index(values: np.ndarray, lo: float, width: float) -> np.ndarray:
    """The documented binning, written out: floor((x - lo) / width); the maximum in the last."""
    index = np.floor((values - lo) / width).astype(np.int64)
    inside = (values >= lo) & (values <= lo + width * GRID_BINS + width / 2)
    index[inside] = np.minimum(index[inside], GRID_BINS - 1)
    return index


def test_column_kinds_text_booleans_and_small_integer_sets_are_categorical() -> None:
    assert column_kinds(frame()) == {
        "charges": "numerical",
        "tenure": "numerical",
        "contract": "categorical",
        "seats": "categorical",
        "active": "categorical",
    }


def test_numerical_statistics_equal_numpy() -> None:
    data = frame()
    col = build_profile(data).columns["charges"]
    assert isinstance(col, NumericalProfile)
    values = data["charges"].to_numpy()
    finite = values[np.isfinite(values)]
    assert col.count == len(finite)
    assert col.nulls == int(np.isnan(values).sum())
    assert col.nonfinite == 0
    assert col.min == finite.min() and col.max == finite.max()
    assert col.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert col.std == pytest.approx(finite.std(), rel=1e-12)  # ddof 0, NumPy's default
    assert col.quantiles == pytest.approx(np.quantile(finite, QUANTILES).tolist(), rel=1e-12)


def test_the_grid_is_numpys_histogram_between_the_reference_min_and_max() -> None:
    values = frame()["charges"].dropna().to_numpy()
    col = build_profile(pd.DataFrame({"x": values})).columns["x"]
    assert isinstance(col, NumericalProfile)
    assert len(col.grid) == GRID_BINS
    assert col.lo == values.min()
    assert col.width == pytest.approx((values.max() - values.min()) / GRID_BINS)
    expected, _ = np.histogram(values, bins=GRID_BINS, range=(values.min(), values.max()))
    assert col.grid == expected.tolist()
    assert sum(col.grid) == len(values)


def test_drift_bins_hold_about_equal_shares_of_the_reference() -> None:
    data = frame(rows=4000)
    for bins in (10, 20):
        col = build_profile(data, bins=bins).columns["charges"]
        assert isinstance(col, NumericalProfile)
        assert col.starts[0] == 0 and col.starts == sorted(set(col.starts))
        assert len(col.starts) == bins
        counts = col.drift_counts()
        assert counts.sum() == col.count
        # Each drift bin is within one grid bin's mass of an equal share.
        assert np.abs(counts - col.count / bins).max() <= max(col.grid)


def test_lumpy_reference_gets_fewer_drift_bins() -> None:
    """Three distinct values cannot fill 20 equal-mass bins: fewer, never empty, bins."""
    col = build_profile(pd.DataFrame({"x": [0.0] * 500 + [1.0] * 300 + [7.5] * 200})).columns["x"]
    assert isinstance(col, NumericalProfile)
    assert 2 <= len(col.starts) < 20
    assert col.drift_counts().sum() == 1000


def test_categorical_frequencies_and_integers_read_as_integers() -> None:
    data = frame()
    profile = build_profile(data)
    contract = profile.columns["contract"]
    assert isinstance(contract, CategoricalProfile)
    assert contract.frequencies == data["contract"].value_counts().to_dict()
    seats = profile.columns["seats"]
    assert isinstance(seats, CategoricalProfile)
    assert set(seats.frequencies) == {"1", "2", "3"}
    floats = build_profile(pd.DataFrame({"k": [1.0, 2.0, None, 2.0]}), columns={"k": "categorical"})
    assert floats.columns["k"] == CategoricalProfile(3, 1, {"1": 1, "2": 2})
    active = profile.columns["active"]
    assert isinstance(active, CategoricalProfile)
    assert set(active.frequencies) == {"True", "False"}


def test_current_window_is_counted_on_the_reference_grid_values_outside_included() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 2000)
    col = build_profile(pd.DataFrame({"x": ref})).columns["x"]
    assert isinstance(col, NumericalProfile)
    cur = np.concatenate([rng.normal(0.5, 1, 1000), [ref.min() - 10, ref.max() + 3, np.inf]])
    counted = current_numerical(col, pd.Series(cur))
    finite = cur[np.isfinite(cur)]
    assert counted.count == len(finite) and counted.nonfinite == 1
    expected = pd.Series(grid_index(finite, col.lo, col.width)).value_counts().sort_index()
    assert counted.indices.tolist() == expected.index.tolist()
    assert counted.counts.tolist() == expected.tolist()
    assert counted.indices.min() < 0 and counted.indices.max() >= GRID_BINS
    assert counted.out_of_bounds == int(((finite < ref.min()) | (finite > ref.max())).sum())
    assert counted.mean == pytest.approx(finite.mean())


def test_current_numbers_nulls_and_type_errors() -> None:
    """Text that reads as a number counts as one (CSV requests); other text is a type error."""
    col = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]})).columns["x"]
    assert isinstance(col, NumericalProfile)
    counted = current_numerical(col, pd.Series(["1.5", "abc", None, 2, True], dtype=object))
    assert (counted.count, counted.nulls, counted.type_errors) == (2, 1, 2)


def test_a_column_missing_from_the_window_is_none() -> None:
    profile = build_profile(frame())
    current = profile_current(profile, frame().drop(columns=["tenure"]))
    assert current["tenure"] is None
    assert isinstance(current["charges"], CurrentNumerical)


def test_all_null_and_constant_reference_columns() -> None:
    data = pd.DataFrame({"empty": [np.nan] * 10, "same": [4.0] * 10})
    profile = build_profile(data)
    empty, same = profile.columns["empty"], profile.columns["same"]
    assert isinstance(empty, NumericalProfile) and isinstance(same, NumericalProfile)
    assert (empty.count, empty.nulls, empty.min, empty.std) == (0, 10, None, None)
    assert empty.quantiles == [None] * len(QUANTILES)
    # A constant gets a grid one unit wide around it, and a standard deviation of 0.
    assert (same.count, same.min, same.max, same.std) == (10, 4.0, 4.0, 0.0)
    assert same.lo == 3.5 and same.width == pytest.approx(1 / GRID_BINS)
    assert sum(same.grid) == 10


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        build_profile(frame(), bins=1)
    assert caught.value.details["field"] == "bins"
    with pytest.raises(InvalidInput) as caught:
        build_profile(frame(), columns={"nope": "numerical"})
    assert caught.value.details["field"] == "columns"
    with pytest.raises(InvalidInput) as caught:
        build_profile(frame(), columns={"charges": "ordinal"})
    assert caught.value.details["field"] == "columns.charges"


def test_json_round_trip_of_a_realistic_profile() -> None:
    profile = build_profile(frame())
    profile.predictions = build_profile(pd.DataFrame({"prediction": [0, 1, 1, 0]})).columns
    text = json.dumps(profile.to_json())
    assert Profile.from_json(json.loads(text)) == profile


finite_floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    numbers=st.lists(st.one_of(finite_floats, st.none()), min_size=1, max_size=60),
    labels=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=60),
    bins=st.integers(min_value=2, max_value=30),
)
def test_json_round_trip_property(
    numbers: list[float | None], labels: list[str | None], bins: int
) -> None:
    size = min(len(numbers), len(labels))
    data = pd.DataFrame(
        {"x": pd.Series(numbers[:size], dtype=float), "k": pd.Series(labels[:size], dtype=object)}
    )
    profile = build_profile(data, bins=bins, columns={"x": "numerical", "k": "categorical"})
    back = Profile.from_json(json.loads(json.dumps(profile.to_json())))
    assert back == profile
    x = profile.columns["x"]
    assert isinstance(x, NumericalProfile)
    assert sum(x.grid) == x.count and x.count + x.nulls == size


def test_the_reference_maximum_counted_in_a_window_stays_in_the_last_grid_bin() -> None:
    """-1.9 + ((0.23 + 1.9) / 1000) * 1000 rounds below 0.23: the maximum is still inside."""
    col = build_profile(pd.DataFrame({"x": [-1.9, 0.0, 0.23]})).columns["x"]
    assert isinstance(col, NumericalProfile)
    assert col.lo + col.width * GRID_BINS < 0.23
    counted = current_numerical(col, pd.Series([-1.9, 0.0, 0.23]))
    assert counted.indices.max() == GRID_BINS - 1 and counted.out_of_bounds == 0
