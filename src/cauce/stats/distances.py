"""Distances and tests between two distributions: drift, prediction drift, rollout analysis.

Over aligned count vectors (the same bins or categories, in the same order):
``jensen_shannon_distance`` (base 2), ``psi``, ``chebyshev_distance``, ``chi_squared``. Over
samples, optionally weighted: ``normalized_wasserstein`` and ``ks_2samp``. From two raw samples,
binned first (``histograms``, ``frequencies``): ``jensen_shannon``. Each equals SciPy's (PSI: its
formula), which the tests check; None where undefined (an empty side).
"""

from __future__ import annotations

from typing import Any

DEFAULT_BINS = 20

# -- samples, bins and categories -------------------------------------------------------------


def is_categorical(values: Any) -> bool:
    """Text, booleans, or numbers with at most a handful of distinct values (class labels)."""
    import numpy as np
    import pandas as pd

    series = pd.Series(values).dropna()
    if series.empty:
        return False
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return True
    return bool(series.nunique() <= 10 and np.all(np.mod(series.to_numpy(dtype=float), 1) == 0))


def frequencies(reference: Any, current: Any) -> tuple[Any, Any]:
    """Category probabilities of both samples over the union of their categories."""
    import pandas as pd

    ref = pd.Series(reference).dropna().astype(str)
    cur = pd.Series(current).dropna().astype(str)
    categories = sorted(set(ref.unique()) | set(cur.unique()))
    p = ref.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
    q = cur.value_counts().reindex(categories, fill_value=0).to_numpy(dtype=float)
    return p / max(p.sum(), 1.0), q / max(q.sum(), 1.0)


def histograms(reference: Any, current: Any, bins: int = DEFAULT_BINS) -> tuple[Any, Any]:
    """Probabilities of both numerical samples over bin edges spanning both."""
    import numpy as np

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=bins)
    p = np.histogram(ref, bins=edges)[0].astype(float)
    q = np.histogram(cur, bins=edges)[0].astype(float)
    return p / max(p.sum(), 1.0), q / max(q.sum(), 1.0)


def jensen_shannon(reference: Any, current: Any, *, bins: int = DEFAULT_BINS) -> float | None:
    """Jensen-Shannon distance (base 2) between two samples; None when either is empty.

    Categorical samples (:func:`is_categorical`) compare their category frequencies; numerical
    ones their histograms over ``bins`` bins spanning both.
    """
    if is_categorical(reference) or is_categorical(current):
        p, q = frequencies(reference, current)
    else:
        p, q = histograms(reference, current, bins)
    return jensen_shannon_distance(p, q)


# -- distances and tests over count vectors ---------------------------------------------------


def _proportions(ref_counts: Any, cur_counts: Any) -> tuple[Any, Any] | None:
    """Both count vectors as shares of their totals; None when either total is 0."""
    import numpy as np

    p = np.asarray(ref_counts, dtype=float).ravel()
    q = np.asarray(cur_counts, dtype=float).ravel()
    if p.shape != q.shape:
        raise ValueError(f"count vectors differ in length: {p.size} and {q.size}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))) or (p < 0).any() or (q < 0).any():
        raise ValueError("counts must be finite and non-negative")
    p_total, q_total = p.sum(), q.sum()
    if p_total == 0 or q_total == 0:
        return None
    return p / p_total, q / q_total


def jensen_shannon_distance(ref_counts: Any, cur_counts: Any) -> float | None:
    """Jensen-Shannon distance (base 2) of two count vectors; None when either sums to 0.

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``: 0 same, 1 disjoint.
    """
    import numpy as np

    shares = _proportions(ref_counts, cur_counts)
    if shares is None:
        return None
    p, q = shares
    m = (p + q) / 2
    js = 0.0
    for x in (p, q):
        seen = x > 0  # x log(x / m) is 0 at x = 0 (scipy's rel_entr), and log(0) would warn
        js += float(np.sum(x[seen] * np.log(x[seen] / m[seen])))
    return float(min(np.sqrt(max(js / (2 * np.log(2)), 0.0)), 1.0))


def psi(ref_counts: Any, cur_counts: Any, *, epsilon: float = 1e-4) -> float | None:
    """Population stability index ``sum((q - p) * ln(q / p))`` of two count vectors.

    p and q are the reference and current shares of each bin; a share of 0 is replaced by
    ``epsilon`` (without renormalising, as Evidently does) so that a bin empty on one side
    counts as a large but finite shift. 0 for identical shares; None when either side sums to 0.
    SciPy has no PSI: the tests check this against the formula and hand-computed values.
    """
    import numpy as np

    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    shares = _proportions(ref_counts, cur_counts)
    if shares is None:
        return None
    p, q = (np.where(x == 0, epsilon, x) for x in shares)
    return float(np.sum((q - p) * (np.log(q) - np.log(p))))  # q / p could overflow


def chebyshev_distance(ref_counts: Any, cur_counts: Any) -> float | None:
    """Largest absolute difference of the two count vectors' shares; None when either is 0.

    Equals ``scipy.spatial.distance.chebyshev(p, q)`` on the shares.
    """
    import numpy as np

    shares = _proportions(ref_counts, cur_counts)
    if shares is None:
        return None
    p, q = shares
    return float(np.max(np.abs(p - q), initial=0.0))


def chi_squared(ref_counts: Any, cur_counts: Any) -> tuple[float, float] | None:
    """Pearson's chi-squared test of homogeneity of two count vectors: (statistic, p-value).

    Equals ``scipy.stats.chi2_contingency([ref, cur], correction=False)`` on the categories that
    are not 0 on both sides; None when fewer than 2 such categories remain or a side is empty.
    """
    import numpy as np
    from scipy.special import chdtrc  # scipy.stats.chi2.sf without importing scipy.stats

    if _proportions(ref_counts, cur_counts) is None:
        return None
    observed = np.vstack([np.asarray(ref_counts, float).ravel(), np.asarray(cur_counts, float)])
    observed = observed[:, observed.sum(axis=0) > 0]
    if observed.shape[1] < 2:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    if not (expected > 0).all():  # counts so small (1e-200) that the products underflow
        return None
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(chdtrc(observed.shape[1] - 1, statistic))


# -- distances and tests over samples ---------------------------------------------------------


def _sample(values: Any, weights: Any, side: str) -> tuple[Any, Any] | None:
    """Finite values sorted, with their cumulative weights (None: counts); None when empty."""
    import numpy as np

    x = np.asarray(values, dtype=float).ravel()
    if weights is None:
        x = x[np.isfinite(x)]
        return (np.sort(x), None) if x.size else None
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape != x.shape:
        raise ValueError(f"{side} weights: {w.size} for {x.size} values")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"{side} weights must be finite and non-negative")
    keep = np.isfinite(x)
    x, w = x[keep], w[keep]
    order = np.argsort(x, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(w[order])])
    return (x[order], cumulative) if cumulative[-1] > 0 else None


def _cdf(sorted_values: Any, cumulative: Any, at: Any) -> Any:
    import numpy as np

    index = np.searchsorted(sorted_values, at, side="right")
    if cumulative is None:
        return index / sorted_values.size
    return cumulative[index] / cumulative[-1]


def _moments(sorted_values: Any, cumulative: Any) -> tuple[float, float]:
    """Mean and variance of a (weighted) sample."""
    import numpy as np

    weights = None if cumulative is None else np.diff(cumulative)
    mean = float(np.average(sorted_values, weights=weights))
    return mean, float(np.average((sorted_values - mean) ** 2, weights=weights))


def normalized_wasserstein(
    ref_values: Any,
    cur_values: Any,
    *,
    ref_weights: Any = None,
    cur_weights: Any = None,
    ref_std: float,
) -> float | None:
    """Wasserstein-1 distance between two samples, in reference standard deviations.

    Equals ``scipy.stats.wasserstein_distance(ref, cur, ref_weights, cur_weights) / ref_std``,
    computed from the two sorted cumulative distributions. ``ref_std`` is the reference's
    (weighted) standard deviation with ddof 0, as stored in its profile. A constant reference
    (``ref_std`` 0) is scaled by the standard deviation of the equal-weight mixture of both
    samples instead: 0 when nothing moved, and at most 2 (a constant that moved to another
    constant), whatever the units. NaN and infinite values are dropped; None when either sample
    is left empty (or its weights sum to 0).
    """
    import numpy as np

    if not ref_std >= 0:
        raise ValueError(f"ref_std must be a non-negative number, got {ref_std}")
    ref = _sample(ref_values, ref_weights, "reference")
    cur = _sample(cur_values, cur_weights, "current")
    if ref is None or cur is None:
        return None
    # stable sort: timsort merges the two sorted runs in linear time
    both = np.sort(np.concatenate([ref[0], cur[0]]), kind="stable")
    at = both[:-1]
    distance = float(np.sum(np.abs(_cdf(*ref, at) - _cdf(*cur, at)) * np.diff(both)))
    if ref_std > 0:
        return distance / ref_std
    if distance == 0:
        return 0.0
    (ref_mean, ref_var), (cur_mean, cur_var) = _moments(*ref), _moments(*cur)
    mixture_std = np.sqrt((ref_var + cur_var) / 2 + (ref_mean - cur_mean) ** 2 / 4)
    return float(distance / mixture_std) if mixture_std > 0 else 0.0


_KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp's MAX_AUTO_N: "auto" is exact up to this size


def ks_2samp(
    ref_values: Any,
    cur_values: Any,
    *,
    ref_counts: Any = None,
    cur_counts: Any = None,
) -> tuple[float, float] | None:
    """Two-sample Kolmogorov-Smirnov test (two-sided): (statistic, p-value).

    Equals ``scipy.stats.ks_2samp(ref, cur)`` (method "auto"). With ``ref_counts`` /
    ``cur_counts`` (whole numbers, one per value: a binned sample), each value stands for that
    many observations, as ``np.repeat(values, counts)`` would. NaNs are dropped first; None when
    a side is then empty. Up to 10,000 observations a side SciPy computes the exact p-value;
    past that, where SciPy switches to the asymptotic distribution, the statistic is read off
    the two sorted cumulative distributions (4x faster than SciPy on a million values) and the
    p-value is SciPy's ``kstwo.sf``.
    """
    import warnings

    import numpy as np
    import scipy.stats

    ref, n1 = _ks_side(ref_values, ref_counts, "reference")
    cur, n2 = _ks_side(cur_values, cur_counts, "current")
    if n1 == 0 or n2 == 0:
        return None
    if max(n1, n2) <= _KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            # SciPy falls back to the asymptotic p-value when the exact one rounds past 1:
            # the result is still SciPy's, and the warning is nothing to act on
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            result = scipy.stats.ks_2samp(_repeat(*ref), _repeat(*cur))
        return float(result.statistic), float(result.pvalue)
    if ref[1] is None and cur[1] is None:
        d = _ks_statistic(ref[0], cur[0])
    else:
        at = np.union1d(ref[0], cur[0])
        d = float(np.max(np.abs(_cdf(*ref, at) - _cdf(*cur, at)), initial=0.0))
    m, n = float(max(n1, n2)), float(min(n1, n2))
    p_value = scipy.stats.kstwo.sf(d, np.round(m * n / (m + n)))
    return d, float(np.clip(p_value, 0, 1))


def _ks_side(values: Any, counts: Any, side: str) -> tuple[tuple[Any, Any], int]:
    """((sorted values, their cumulative counts or None), observations) of one KS sample."""
    import numpy as np

    x = np.asarray(values, dtype=float).ravel()
    if counts is None:
        x = np.sort(x[~np.isnan(x)], kind="stable")  # already sorted (a profile's): linear
        return (x, None), int(x.size)
    c = np.asarray(counts, dtype=float).ravel()
    if c.shape != x.shape:
        raise ValueError(f"{side} counts: {c.size} for {x.size} values")
    if not np.all(np.isfinite(c)) or (c < 0).any() or not np.all(np.mod(c, 1) == 0):
        raise ValueError(f"{side} counts must be whole non-negative numbers")
    keep = ~np.isnan(x)
    x, c = x[keep], c[keep]
    order = np.argsort(x, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(c[order])])
    return (x[order], cumulative), int(cumulative[-1])


def _repeat(sorted_values: Any, cumulative: Any) -> Any:
    import numpy as np

    if cumulative is None:
        return sorted_values
    return np.repeat(sorted_values, np.diff(cumulative).astype(np.int64))


def _ks_statistic(ref: Any, cur: Any) -> float:
    """The largest ECDF difference of two sorted samples, from the reference values only."""
    import numpy as np

    n1, n2 = ref.size, cur.size
    # F_ref - F_cur peaks at a reference value and dips just before one (or at the end), so
    # the reference values give the same extremes as all n1 + n2 points.
    above = np.searchsorted(ref, ref, side="right") / n1 - np.searchsorted(cur, ref, "right") / n2
    cur_before = np.append(np.searchsorted(cur, ref, side="left"), n2) / n2
    below = cur_before - np.arange(n1 + 1) / n1
    d_max, d_min = float(above.max()), float(np.clip(below.max(), 0, 1))
    return d_min if d_min > d_max else d_max
