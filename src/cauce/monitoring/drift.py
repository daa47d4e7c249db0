"""Drift and data quality between a reference profile and a current window.

Every value is computed on the reference's binning (see :mod:`cauce.monitoring.profiles`) and
equals its reference implementation on those bins: numerical PSI, Jensen-Shannon and Chebyshev
over the drift bins; normalized Wasserstein and two-sample KS over the fine grid (each bin's
values taken at its centre, so ``scipy.stats.wasserstein_distance`` and ``scipy.stats.ks_2samp``
of the binned samples give the same numbers); categorical metrics over the union of categories.

A value that cannot be computed is ``None`` with the reason in ``details["reason"]``, and its
outcome is ``not_computed`` — never a NaN, and never read as "no drift": an empty window, a
column the window lacks, a column with no values on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce import stats
from cauce.errors import InvalidInput
from cauce.monitoring import metrics
from cauce.monitoring.profiles import (
    GRID_BINS,
    CategoricalProfile,
    ColumnProfile,
    CurrentCategorical,
    CurrentColumn,
    CurrentNumerical,
    NumericalProfile,
    Profile,
    profile_current,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NUMERICAL_METRICS = tuple(n for n, m in metrics.METRICS.items() if "numerical" in m.kinds)
CATEGORICAL_METRICS = tuple(n for n, m in metrics.METRICS.items() if "categorical" in m.kinds)
P_VALUE_METRICS = tuple(n for n, m in metrics.METRICS.items() if not m.higher_is_drift)
DEFAULT_THRESHOLDS = {n: m.default_threshold for n, m in metrics.METRICS.items()}
QUALITY_METRICS = ("null_rate", "type_error_rate", "out_of_bounds_rate")

PASSED, BREACHED, NOT_COMPUTED = "passed", "breached", "not_computed"
MEASURED = "measured"  # computed with no bound to judge it by (GenAI operational metrics)


@dataclass(frozen=True)
class FeatureValue:
    """One metric of one feature, against its threshold."""

    name: str
    kind: str
    metric: str
    value: float | None
    threshold: float | None
    outcome: str  # passed | breached | not_computed
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool | None:
        """True when breached, False when passed, None when not computed."""
        return None if self.outcome == NOT_COMPUTED else self.outcome == BREACHED


@dataclass(frozen=True)
class DriftReport:
    """Data drift of every feature, and the dataset-level verdict."""

    features: list[FeatureValue]
    rows: int
    drift_share: float
    drifted_share: float | None  # None when no feature could be computed
    dataset_drift: bool | None

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted features."""
        return [f.name for f in self.features if f.outcome == BREACHED]


def breached(metric: str, value: float, threshold: float) -> bool:
    """Whether a value crosses its threshold: above for distances, below for p-values."""
    return value < threshold if metric in P_VALUE_METRICS else value > threshold


def column_metric(
    metric: str, reference: ColumnProfile, current: CurrentColumn | None
) -> tuple[float | None, dict[str, Any]]:
    """One drift metric of one column: (value, details); value None says why in details."""
    if current is None:
        return None, {"reason": "the column is missing from the current window"}
    if reference.count == 0:
        return None, {"reason": "the reference has no values in this column"}
    if current.count == 0:
        return None, {"reason": "the current window has no values in this column"}
    if isinstance(reference, NumericalProfile):
        assert isinstance(current, CurrentNumerical)
        return _numerical_metric(metric, reference, current)
    assert isinstance(reference, CategoricalProfile) and isinstance(current, CurrentCategorical)
    return _categorical_metric(metric, reference, current)


def _numerical_metric(
    metric: str, ref: NumericalProfile, cur: CurrentNumerical
) -> tuple[float | None, dict[str, Any]]:

    p, q = ref.drift_counts(), cur.drift_counts(ref)
    edges = [ref.lo + start * ref.width for start in ref.starts] + [ref.lo + GRID_BINS * ref.width]
    details: dict[str, Any] = {
        "reference_count": ref.count,
        "current_count": cur.count,
        # What a report draws: both sides over the drift bins (the end bins run to ±inf).
        "distribution": {"edges": edges, "reference": p.tolist(), "current": q.tolist()},
    }
    if metric in ("jensen_shannon", "psi", "chebyshev"):
        return _distance(metric, p, q), details
    indices, p, q = _aligned_grid(ref, cur)
    centres = ref.lo + (indices + 0.5) * ref.width
    if metric == "normalized_wasserstein":
        assert ref.std is not None
        value = stats.normalized_wasserstein(
            centres, centres, ref_weights=p, cur_weights=q, ref_std=ref.std
        )
        return value, details
    if metric == "ks":
        result = stats.ks_2samp(centres, centres, ref_counts=p, cur_counts=q)
        if result is None:
            return None, {**details, "reason": "no values on the grid"}
        details["statistic"] = result[0]
        return result[1], details
    raise InvalidInput(f"{metric!r} is not a numerical drift metric")


def _aligned_grid(
    ref: NumericalProfile, cur: CurrentNumerical
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid indices used by either side, with each side's counts on them."""
    import numpy as np

    grid = np.asarray(ref.grid, dtype=np.int64)
    used = np.flatnonzero(grid)
    indices = np.union1d(used, cur.indices)
    p = np.zeros(len(indices))
    q = np.zeros(len(indices))
    p[np.searchsorted(indices, used)] = grid[used]
    q[np.searchsorted(indices, cur.indices)] = cur.counts
    return indices, p, q


def _categorical_metric(
    metric: str, ref: CategoricalProfile, cur: CurrentCategorical
) -> tuple[float | None, dict[str, Any]]:
    import numpy as np

    categories = sorted(set(ref.frequencies) | set(cur.frequencies))
    p = np.array([ref.frequencies.get(c, 0) for c in categories], dtype=float)
    q = np.array([cur.frequencies.get(c, 0) for c in categories], dtype=float)
    unseen = [c for c in categories if c not in ref.frequencies]
    top = sorted(categories, key=lambda c: -(ref.frequencies.get(c, 0) + cur.frequencies.get(c, 0)))
    shown = sorted(top[:30], key=_category_order)
    details: dict[str, Any] = {
        "reference_count": ref.count,
        "current_count": cur.count,
        "distribution": {
            "categories": shown,
            "reference": [ref.frequencies.get(c, 0) for c in shown],
            "current": [cur.frequencies.get(c, 0) for c in shown],
            "others": len(categories) - len(shown),
        },
    }
    if unseen:
        details["unseen_categories"] = unseen[:20]
    if metric == "chi_squared":
        result = stats.chi_squared(p, q)
        if result is None:
            return None, {**details, "reason": "fewer than two categories"}
        details["statistic"] = result[0]
        return result[1], details
    if metric in ("jensen_shannon", "psi", "chebyshev"):
        return _distance(metric, p, q), details
    raise InvalidInput(f"{metric!r} is not a categorical drift metric")


def _category_order(category: str) -> tuple[int, float, str]:
    """Numbers in numeric order (``2`` before ``10``), then text."""
    try:
        return 0, float(category), category
    except ValueError:
        return 1, 0.0, category


def _distance(metric: str, p: Any, q: Any) -> float | None:
    if metric == "jensen_shannon":
        return stats.jensen_shannon_distance(p, q)
    if metric == "psi":
        return stats.psi(p, q)
    return stats.chebyshev_distance(p, q)


def _current(
    reference: Profile, current: Any, rows: int | None
) -> tuple[dict[str, CurrentColumn | None], int]:
    """The window's columns and its row count (counted columns cannot tell it when all are
    missing: give ``rows`` then)."""
    if isinstance(current, dict):
        if rows is None:
            rows = max((_rows(c) for c in current.values() if c is not None), default=0)
        return current, rows
    return profile_current(reference, current), len(current)


def _rows(column: CurrentColumn) -> int:
    extra = column.nonfinite if isinstance(column, CurrentNumerical) else 0
    return column.count + column.nulls + column.type_errors + extra


def data_drift(
    reference: Profile,
    current: pd.DataFrame | dict[str, CurrentColumn | None],
    *,
    numerical: str = "normalized_wasserstein",
    categorical: str = "jensen_shannon",
    threshold: float | None = None,
    drift_share: float = 0.3,
    thresholds: dict[str, float] | None = None,
    features: list[str] | None = None,
    rows: int | None = None,
) -> DriftReport:
    """Drift of each feature and whether the dataset drifted (drifted share ≥ ``drift_share``).

    ``threshold`` applies to every feature (each metric's default when None); ``thresholds``
    overrides it per feature. A feature breaches when its distance is above the threshold, or
    its p-value (``ks``, ``chi_squared``) below it. ``features`` (default: all) are the ones
    judged; ``rows`` is the window's row count when ``current`` is already counted.
    """
    if numerical not in NUMERICAL_METRICS:
        raise InvalidInput(
            f"numerical drift metric must be one of {', '.join(NUMERICAL_METRICS)}, "
            f"not {numerical!r}",
            details={"field": "numerical"},
        )
    if categorical not in CATEGORICAL_METRICS:
        raise InvalidInput(
            f"categorical drift metric must be one of {', '.join(CATEGORICAL_METRICS)}, "
            f"not {categorical!r}",
            details={"field": "categorical"},
        )
    columns, rows = _current(reference, current, rows)
    per_feature = thresholds or {}
    unknown = sorted(set(per_feature) - set(reference.columns))
    if unknown:
        raise InvalidInput(
            f"thresholds name features the reference does not have: {', '.join(unknown)}",
            details={"field": "thresholds", "unknown": unknown},
        )
    results = []
    for name in list(reference.columns) if features is None else features:
        ref = reference.columns[name]
        metric = numerical if ref.kind == "numerical" else categorical
        limit = per_feature.get(name, threshold if threshold is not None else None)
        limit = DEFAULT_THRESHOLDS[metric] if limit is None else limit
        value, details = (
            (None, {"reason": "the current window is empty"})
            if rows == 0
            else column_metric(metric, ref, columns.get(name))
        )
        outcome = (
            NOT_COMPUTED
            if value is None
            else (BREACHED if breached(metric, value, limit) else PASSED)
        )
        results.append(FeatureValue(name, ref.kind, metric, value, limit, outcome, details))
    computed = [f for f in results if f.outcome != NOT_COMPUTED]
    share = sum(f.outcome == BREACHED for f in computed) / len(computed) if computed else None
    return DriftReport(
        features=results,
        rows=rows,
        drift_share=drift_share,
        drifted_share=share,
        dataset_drift=None if share is None else share >= drift_share,
    )


def data_quality(
    reference: Profile,
    current: pd.DataFrame | dict[str, CurrentColumn | None],
    limits: dict[str, float],
    *,
    features: list[str] | None = None,
    rows: int | None = None,
) -> list[FeatureValue]:
    """Null, type-error and out-of-bounds rates of each feature against ``limits`` (max rates).

    A column missing from the window has a null rate of 1; out of bounds means outside the
    reference's [min, max] (numerical) or a category the reference never had.
    """
    unknown = sorted(set(limits) - set(QUALITY_METRICS))
    if unknown:
        raise InvalidInput(
            f"unknown data quality metric {', '.join(unknown)}; "
            f"known: {', '.join(QUALITY_METRICS)}",
            details={"field": unknown[0]},
        )
    columns, rows = _current(reference, current, rows)
    out = []
    for name in list(reference.columns) if features is None else features:
        ref = reference.columns[name]
        cur = columns.get(name)
        for metric, limit in limits.items():
            value, details = _quality(metric, ref, cur, rows)
            outcome = NOT_COMPUTED if value is None else (BREACHED if value > limit else PASSED)
            out.append(FeatureValue(name, ref.kind, metric, value, limit, outcome, details))
    return out


def _quality(
    metric: str, ref: ColumnProfile, cur: CurrentColumn | None, rows: int
) -> tuple[float | None, dict[str, Any]]:
    if rows == 0:
        return None, {"reason": "the current window is empty"}
    if cur is None:
        if metric == "null_rate":
            return 1.0, {"reason": "the column is missing from the current window"}
        return None, {"reason": "the column is missing from the current window"}
    total = (
        cur.count
        + cur.nulls
        + cur.type_errors
        + (cur.nonfinite if isinstance(cur, CurrentNumerical) else 0)
    )
    if metric == "null_rate":
        return cur.nulls / total, {"nulls": cur.nulls, "rows": total}
    if metric == "type_error_rate":
        non_null = total - cur.nulls
        if non_null == 0:
            return None, {"reason": "no non-null values in the current window"}
        return cur.type_errors / non_null, {"type_errors": cur.type_errors}
    if ref.count == 0:
        return None, {"reason": "the reference has no values to take bounds from"}
    if isinstance(cur, CurrentNumerical):
        assert isinstance(ref, NumericalProfile)
        valued = cur.count + cur.nonfinite
        if valued == 0:
            return None, {"reason": "no values in the current window"}
        outside = cur.out_of_bounds + cur.nonfinite
        return outside / valued, {"out_of_bounds": outside, "low": ref.min, "high": ref.max}
    assert isinstance(ref, CategoricalProfile)
    if cur.count == 0:
        return None, {"reason": "no values in the current window"}
    unseen = {k: v for k, v in cur.frequencies.items() if k not in ref.frequencies}
    return sum(unseen.values()) / cur.count, {"unseen_categories": sorted(unseen)[:20]}


def finite(value: float | None) -> float | None:
    """The value, or None for NaN and ±inf (JSON and SQL cannot hold them)."""
    return None if value is None or not math.isfinite(value) else value
