"""Profiles computed by DuckDB, checked against pandas and numpy on the same data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cauce.data.profile import BINS, QUANTILE_KEYS, QUANTILES, TOP_K, profile_parquet


def mixed(n: int = 5000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, n),
            "age": rng.integers(18, 90, n).astype("int64"),
            "city": rng.choice([f"c{i:02d}" for i in range(30)], n, p=_weights(30)),
            "active": rng.random(n) < 0.3,
            "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = None
    return frame


def _weights(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    return w / w.sum()


@pytest.fixture
def parquet(tmp_path: Path) -> tuple[pd.DataFrame, str]:
    frame = mixed()
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    return frame, str(path)


def test_numeric_columns_match_pandas_and_numpy(parquet: tuple[pd.DataFrame, str]) -> None:
    frame, path = parquet
    profile = profile_parquet(path)
    assert profile["row_count"] == len(frame)
    assert profile["column_count"] == 5
    for name in ("amount", "age"):
        col, series = profile["columns"][name], frame[name]
        values = series.dropna().to_numpy(dtype="float64")
        assert col["null_count"] == series.isna().sum()
        assert col["null_rate"] == pytest.approx(series.isna().mean())
        assert col["distinct_count"] == series.nunique()
        assert col["min"] == pytest.approx(series.min())
        assert col["max"] == pytest.approx(series.max())
        assert col["mean"] == pytest.approx(series.mean(), rel=1e-12)
        assert col["std"] == pytest.approx(series.std(), rel=1e-9)
        expected = np.quantile(values, QUANTILES)  # linear interpolation
        assert list(col["quantiles"]) == list(QUANTILE_KEYS)
        assert list(col["quantiles"].values()) == pytest.approx(list(expected), rel=1e-12)
        counts, edges = np.histogram(values, bins=BINS)
        assert col["histogram"]["counts"] == counts.tolist()
        assert col["histogram"]["edges"] == pytest.approx(edges.tolist(), rel=1e-12)
        assert sum(col["histogram"]["counts"]) == len(values)
    assert profile["columns"]["age"]["type"] == "BIGINT"
    assert isinstance(profile["columns"]["age"]["min"], int)


def test_top_values_match_value_counts(parquet: tuple[pd.DataFrame, str]) -> None:
    frame, path = parquet
    profile = profile_parquet(path)
    city = profile["columns"]["city"]
    expected = frame["city"].value_counts()
    assert len(city["top_k"]) == TOP_K
    assert [t["count"] for t in city["top_k"]] == expected.head(TOP_K).tolist()
    assert all(expected[t["value"]] == t["count"] for t in city["top_k"])
    assert city["distinct_count"] == frame["city"].nunique()
    assert "mean" not in city and "histogram" not in city
    active = profile["columns"]["active"]
    assert {t["value"]: t["count"] for t in active["top_k"]} == (
        frame["active"].value_counts().to_dict()
    )
    seen = profile["columns"]["seen"]
    assert seen["min"] == frame["seen"].min().isoformat()
    assert seen["max"] == frame["seen"].max().isoformat()
    age_top = profile["columns"]["age"]["top_k"]
    assert all(frame["age"].eq(t["value"]).sum() == t["count"] for t in age_top)


def test_edge_cases_empty_constant_all_null_and_infinite(tmp_path: Path) -> None:
    path = tmp_path / "edge.parquet"
    pd.DataFrame(
        {
            "constant": [7.0] * 4,
            "nothing": pd.Series([None] * 4, dtype="float64"),
            "inf": [1.0, np.inf, 3.0, None],
            'we"ird name': ["a", "b", "a", "a"],
        }
    ).to_parquet(path, index=False)
    profile = profile_parquet(str(path))
    constant = profile["columns"]["constant"]
    assert constant["std"] == 0.0
    assert constant["histogram"] == {"edges": [7.0, 7.0], "counts": [4]}
    nothing = profile["columns"]["nothing"]
    assert nothing["null_rate"] == 1.0
    assert nothing["mean"] is None and nothing["histogram"] is None and nothing["top_k"] == []
    inf = profile["columns"]["inf"]
    assert inf["max"] == "Infinity" and inf["mean"] == "Infinity"
    assert sum(inf["histogram"]["counts"]) == 2  # finite values only
    assert profile["columns"]['we"ird name']["top_k"][0] == {"value": "a", "count": 3}
    json.dumps(profile, allow_nan=False)  # storable as strict JSON (PostgreSQL's json type)

    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"x": pd.Series([], dtype="float64")}).to_parquet(empty, index=False)
    col = profile_parquet(str(empty))["columns"]["x"]
    assert col["null_rate"] is None and col["quantiles"] is None and col["top_k"] == []


def test_profile_is_fast_on_a_wide_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, width = 100_000, 20
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(width)})
    frame["k"] = rng.choice(["a", "b", "c"], n)
    path = tmp_path / "wide.parquet"
    frame.to_parquet(path, index=False)
    started = time.perf_counter()
    profile = profile_parquet(str(path))
    elapsed = time.perf_counter() - started
    assert profile["column_count"] == width + 1
    assert elapsed < 10, f"profiling 100k x 21 took {elapsed:.1f}s"
