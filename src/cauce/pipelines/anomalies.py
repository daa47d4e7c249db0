"""Anomalies in the data flow: a step run's row count, null rates and duration against the same
step's earlier runs (the DataOps inner monitoring loop).

The detector is robust to the outliers it looks for: the centre is the median of the history
and the spread its median absolute deviation (MAD), scaled by 1.4826 so that it estimates the
standard deviation of normal data. A value whose robust score ``|value - median| / scale``
exceeds the threshold (3.5 by default, as Iglewicz and Hoaglin suggest) is an anomaly.

A history that never varies has a MAD of 0, so each metric has a floor under its scale: row
counts 1% of the median, null rates one percentage point, durations 20% of the median plus
50 ms (timings jitter). Fewer than ``min_history`` earlier values decide nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAD_TO_SIGMA = 1.4826
DEFAULT_THRESHOLD = 3.5
DEFAULT_MIN_HISTORY = 5


@dataclass(frozen=True)
class Anomaly:
    """A value out of line with its history."""

    metric: str
    value: float
    median: float
    scale: float
    score: float
    history: int

    def message(self) -> str:
        """One readable line."""
        return (
            f"{self.metric} = {self.value:g} is out of line with the last {self.history} runs "
            f"(median {self.median:g}, robust score {self.score:.1f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


def _floor(metric: str, median: float) -> float:
    if metric == "rows":
        return max(abs(median) * 0.01, 1.0)
    if metric.startswith("null_rate"):
        return 0.01
    if metric == "duration_ms":
        return abs(median) * 0.2 + 50.0
    return max(abs(median) * 0.01, 1e-9)


def score(metric: str, history: Sequence[float], value: float) -> tuple[float, float, float]:
    """The median, scale and robust score of ``value`` against ``history``."""
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    scale = max(MAD_TO_SIGMA * mad, _floor(metric, median))
    return median, scale, abs(value - median) / scale


def flatten(stats: Mapping[str, Any]) -> dict[str, float]:
    """``{"rows": 10, "null_rates": {"age": 0.1}}`` → ``{"rows": 10, "null_rate.age": 0.1}``."""
    flat: dict[str, float] = {}
    for key in ("rows", "duration_ms"):
        if isinstance(stats.get(key), (int, float)):
            flat[key] = float(stats[key])
    for column, rate in (stats.get("null_rates") or {}).items():
        flat[f"null_rate.{column}"] = float(rate)
    return flat


def find_anomalies(
    current: Mapping[str, Any],
    previous: Sequence[Mapping[str, Any]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_history: int = DEFAULT_MIN_HISTORY,
) -> list[Anomaly]:
    """The metrics of ``current`` stats that are out of line with ``previous`` stats."""
    now = flatten(current)
    past = [flatten(p) for p in previous]
    found = []
    for metric, value in sorted(now.items()):
        history = [p[metric] for p in past if metric in p]
        if len(history) < min_history:
            continue
        median, scale, robust = score(metric, history, value)
        if robust > threshold:
            found.append(Anomaly(metric, value, median, scale, robust, len(history)))
    return found
