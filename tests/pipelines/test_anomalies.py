"""The robust detector behind the pipeline anomaly checks."""

from __future__ import annotations

import statistics

from hypothesis import given
from hypothesis import strategies as st

from cauce.pipelines.anomalies import MAD_TO_SIGMA, find_anomalies, flatten, score


def stats(rows: float, age_nulls: float = 0.0, duration: float = 100.0) -> dict[str, object]:
    return {"rows": rows, "null_rates": {"age": age_nulls}, "duration_ms": duration}


def test_a_row_count_drop_is_flagged_and_a_normal_one_is_not() -> None:
    history = [stats(r) for r in (1000, 1010, 990, 1005, 995, 1002)]
    assert find_anomalies(stats(1003), history) == []
    [drop] = find_anomalies(stats(400), history)
    assert drop.metric == "rows" and drop.value == 400
    assert drop.median == 1001 and drop.history == 6
    assert "rows = 400 is out of line with the last 6 runs" in drop.message()


def test_nulls_in_a_column_that_never_had_any_are_flagged() -> None:
    history = [stats(1000, 0.0) for _ in range(6)]
    assert find_anomalies(stats(1000, 0.005), history) == []  # under one percentage point
    [nulls] = find_anomalies(stats(1000, 0.2), history)
    assert nulls.metric == "null_rate.age"


def test_duration_jitter_is_tolerated_but_a_tenfold_slowdown_is_not() -> None:
    history = [stats(1000, duration=d) for d in (100, 120, 90, 110, 105)]
    assert find_anomalies(stats(1000, duration=160), history) == []
    [slow] = find_anomalies(stats(1000, duration=1500), history)
    assert slow.metric == "duration_ms"


def test_too_little_history_decides_nothing() -> None:
    assert find_anomalies(stats(1), [stats(1000)] * 4) == []
    assert find_anomalies(stats(1), [stats(1000)] * 4, min_history=4) != []


def test_an_outlier_in_the_history_does_not_hide_the_next_one() -> None:
    # A mean/stdev detector would be blinded by the earlier spike; the median and MAD are not.
    history = [stats(r) for r in (1000, 1000, 1000, 50_000, 1000, 1000)]
    assert [a.metric for a in find_anomalies(stats(30_000), history)] == ["rows"]


def test_flatten_names_each_metric() -> None:
    assert flatten(stats(5, 0.5, 7)) == {"rows": 5.0, "duration_ms": 7.0, "null_rate.age": 0.5}


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=1e6),
)
def test_score_matches_the_definition(history: list[float], value: float) -> None:
    median, scale, robust = score("other", history, value)
    assert median == statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    assert scale >= MAD_TO_SIGMA * mad
    assert abs(robust - abs(value - median) / scale) <= 1e-9 * max(1.0, robust)
