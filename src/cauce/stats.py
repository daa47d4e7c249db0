"""Statistics: distances, tests and model-quality metrics, one definition each.

Monitors (drift, prediction drift, model performance), rollout analysis, gates and
``models evaluate`` all compute their numbers here, so two of them cannot disagree about the same
rows. Each function equals its reference implementation (SciPy, scikit-learn), which the tests
check; each returns Python floats, and None (never NaN) where the value is undefined, such as an
empty sample or a ROC AUC with one class. A bad argument raises ``ValueError``.

Distributions, over aligned count vectors (the same bins or categories, in the same order):
``jensen_shannon_distance`` (base 2), ``psi``, ``chebyshev_distance``, ``chi_squared``. Over
samples, optionally weighted: ``normalized_wasserstein`` and ``ks_2samp``. From two raw samples,
binned first (``histograms``, ``frequencies``): ``jensen_shannon``.

Model quality: ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (and all five at once
with ``classification_metrics``); ``mae``, ``rmse``, ``r2`` (``regression_metrics``). The rule for
classes, the positive label and averaging is :func:`classification_metrics`'s docstring.

NumPy, SciPy and pandas are imported inside the functions: ``import cauce`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

DEFAULT_BINS = 20
Average = Literal["binary", "micro", "macro", "weighted"]
AVERAGES: tuple[str, ...] = get_args(Average)
Label = bool | int | float | str  # a class label a user names (positive)
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")

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


# -- model quality: classification ------------------------------------------------------------


@dataclass(frozen=True)
class _Labels:
    """True and predicted labels as indices into the sorted classes, and how to average."""

    classes: list[Any]
    truth: Any  # class index per row
    predicted: Any
    average: Average
    positive: int | None  # index of the positive class (average "binary"); None: absent


def _drop_missing(*columns: Any) -> list[Any]:
    """Equal-length arrays (1-D, or 2-D scores) without the rows that have a null in any."""
    import numpy as np
    import pandas as pd

    arrays = [np.asarray(c) for c in columns]
    arrays = [a if a.ndim == 2 else a.ravel() for a in arrays]
    if len({len(a) for a in arrays}) > 1:
        raise ValueError(f"inputs differ in length: {[len(a) for a in arrays]}")
    keep = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        missing = np.asarray(pd.isna(a), dtype=bool)
        keep &= ~(missing.any(axis=1) if missing.ndim == 2 else missing)
    return [a[keep] for a in arrays]


def _is_text(values: Any) -> bool:
    kind = values.dtype.kind
    return kind in "US" or (kind == "O" and any(isinstance(v, str) for v in values.tolist()))


def _as_labels(*arrays: Any) -> list[Any]:
    """Label arrays of one type: text when any of them is text (1 and "1" are one class)."""
    import numpy as np

    if any(_is_text(a) for a in arrays):
        return [a.astype(str) for a in arrays]
    # object arrays (from pandas or JSON) as NumPy types: ints, floats or bools
    return [np.array(a.tolist()) if a.dtype.kind == "O" else a for a in arrays]


def _match(classes: list[Any], label: Any) -> int | None:
    """The index of the class ``label`` names: equal, or equal as text ("1" names 1)."""
    for i, c in enumerate(classes):
        if c == label and isinstance(c, str) == isinstance(label, str):
            return i
    for i, c in enumerate(classes):
        if str(c) == str(label) or (not isinstance(c, str) and _same_number(c, label)):
            return i
    return None


def _same_number(value: Any, label: Any) -> bool:
    try:
        return bool(float(value) == float(label))
    except (TypeError, ValueError):
        return False


def check_label(value: Any) -> Label | None:
    """A class label a user names (``positive``): text, a number or a boolean; or None."""
    if value is None or (isinstance(value, Label) and value != ""):
        return value
    raise ValueError(f"a class label is non-empty text, a number or a boolean, got {value!r}")


def default_positive(classes: list[Any]) -> Any:
    """The positive class of sorted ``classes`` when none is given; None without classes.

    ``1`` (``True``) for labels within {0, 1} or {-1, 1}, as scikit-learn's default
    ``pos_label=1``; else the greatest class (numbers by value, text in text order: ``yes`` of
    ``no``/``yes``).
    """
    if not classes:
        return None
    if all(not isinstance(c, str) for c in classes):
        values = {float(c) for c in classes}
        if values <= {0.0, 1.0} or values <= {-1.0, 1.0}:
            return True if all(isinstance(c, bool) for c in classes) else 1
    return classes[-1]


def _labels(y_true: Any, y_pred: Any, positive: Any, average: Average | None) -> _Labels:
    """The classes both label arrays hold, and the averaging rule that applies to them."""
    import numpy as np

    truth, predicted = _as_labels(y_true, y_pred)
    found = np.unique(np.concatenate([truth, predicted]))
    classes = [c.item() if hasattr(c, "item") else c for c in found]
    truth_index = np.searchsorted(found, truth)
    predicted_index = np.searchsorted(found, predicted)
    if average is None:
        average = "binary" if positive is not None or len(classes) <= 2 else "macro"
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}; got {average!r}")
    if average != "binary":
        if positive is not None:
            raise ValueError(
                f"positive applies to average binary; with average {average} every class counts"
            )
        return _Labels(classes, truth_index, predicted_index, average, None)
    if positive is None:
        if len(classes) > 2:
            raise ValueError(
                f"{len(classes)} classes: give positive (that class against the others) or "
                "average macro, micro or weighted"
            )
        positive = default_positive(classes)
    index = _match(classes, positive) if classes else None
    if index is None and len(classes) == 2:
        raise ValueError(f"positive label {positive!r} is not one of the labels {classes}")
    return _Labels(classes, truth_index, predicted_index, average, index)


def _counts(labels: _Labels) -> tuple[Any, Any, Any, Any]:
    """Per class: true positives, false positives, false negatives, and support."""
    import numpy as np

    k = len(labels.classes)
    hit = labels.truth == labels.predicted
    tp = np.bincount(labels.truth[hit], minlength=k).astype(float)
    fp = np.bincount(labels.predicted, minlength=k) - tp
    support = np.bincount(labels.truth, minlength=k).astype(float)
    return tp, fp, support - tp, support


def _ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    import numpy as np

    out = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _averaged(labels: _Labels, metric: str) -> float | None:
    """Precision, recall or F1 under the labels' averaging rule."""
    import numpy as np

    if not len(labels.truth):
        return None
    tp, fp, fn, support = _counts(labels)
    if labels.average == "binary":
        if labels.positive is None:
            return 0.0  # the positive class occurs nowhere: nothing found, nothing to find
        i = labels.positive
        tp, fp, fn = tp[i : i + 1], fp[i : i + 1], fn[i : i + 1]
    elif labels.average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    denominator = {"precision": tp + fp, "recall": tp + fn, "f1": 2 * tp + fp + fn}[metric]
    per_class = _ratio((2 * tp) if metric == "f1" else tp, denominator)
    if labels.average == "weighted":
        return float(np.sum(per_class * support) / support.sum()) if support.sum() else 0.0
    return float(np.mean(per_class))


def accuracy(y_true: Any, y_pred: Any) -> float | None:
    """Share of rows predicted right (``sklearn.metrics.accuracy_score``); None when empty.

    Rows with a missing label or prediction are left out.
    """
    import numpy as np

    truth, predicted = _drop_missing(y_true, y_pred)
    if not truth.size:
        return None
    truth, predicted = _as_labels(truth, predicted)
    return float(np.mean(truth == predicted))


def precision(
    y_true: Any, y_pred: Any, *, positive: Any = None, average: Average | None = None
) -> float | None:
    """Precision (``sklearn.metrics.precision_score``, ``zero_division=0``); None when empty.

    Classes, ``positive`` and ``average`` follow :func:`classification_metrics`' rule.
    """
    truth, predicted = _drop_missing(y_true, y_pred)
    return _averaged(_labels(truth, predicted, positive, average), "precision")


def recall(
    y_true: Any, y_pred: Any, *, positive: Any = None, average: Average | None = None
) -> float | None:
    """Recall (``sklearn.metrics.recall_score``, ``zero_division=0``); None when empty.

    Classes, ``positive`` and ``average`` follow :func:`classification_metrics`' rule.
    """
    truth, predicted = _drop_missing(y_true, y_pred)
    return _averaged(_labels(truth, predicted, positive, average), "recall")


def f1(
    y_true: Any, y_pred: Any, *, positive: Any = None, average: Average | None = None
) -> float | None:
    """F1 (``sklearn.metrics.f1_score``, ``zero_division=0``); None when empty.

    Classes, ``positive`` and ``average`` follow :func:`classification_metrics`' rule.
    """
    truth, predicted = _drop_missing(y_true, y_pred)
    return _averaged(_labels(truth, predicted, positive, average), "f1")


def roc_auc(
    y_true: Any,
    y_score: Any,
    *,
    positive: Any = None,
    average: Average | None = None,
    labels: Any = None,
) -> float | None:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); None where undefined.

    ``y_score`` is either the score of the positive class (1-D; average binary) or one score
    column per class (2-D: class probabilities, columns in the order of ``labels``, by default
    the sorted classes of ``y_true``). The classes, positive label and average follow
    :func:`classification_metrics`' rule, over the classes of ``y_true`` and ``labels``.
    Rows with a missing label or score are left out.
    """

    truth, score = _drop_missing(y_true, y_score)
    if score.ndim == 1:
        if not truth.size:
            return None
        (truth,) = _as_labels(truth)
        found = _labels(truth, truth, positive, average)
        if found.average != "binary":
            raise ValueError(
                "a 1-D score is the positive class's score: with more than two classes give "
                "positive, or one score column per class"
            )
        if found.positive is None:
            return None
        return _binary_auc(found.truth == found.positive, score.astype(float))
    return _auc_of_columns(truth, score, labels, positive, average)


def _auc_of_columns(
    truth: Any, score: Any, labels: Any, positive: Any, average: Average | None
) -> float | None:
    """ROC AUC from one score column per class: binary from the positive's, else one-vs-rest."""
    import numpy as np

    score = score.astype(float)
    if not truth.size:
        return None
    names = np.unique(_as_labels(truth)[0]) if labels is None else np.asarray(labels)
    truth, names = _as_labels(truth, names)
    if len(names) != score.shape[1]:
        raise ValueError(f"{score.shape[1]} score columns for {len(names)} labels")
    found = _labels(truth, names, positive, average)
    where = {c: j for j, c in enumerate(names.tolist())}
    column = [where.get(c) for c in found.classes]
    if any(column[i] is None for i in np.unique(found.truth)):
        return None  # a class without a score column (a class the model never saw)
    if found.average == "binary":
        if found.positive is None or column[found.positive] is None:
            return None
        return _binary_auc(found.truth == found.positive, score[:, column[found.positive]])
    rows = [i for i in range(len(found.classes)) if column[i] is not None]
    actual = np.stack([found.truth == i for i in rows], axis=1)
    scores = score[:, [column[i] for i in rows]]
    if found.average == "micro":
        return _binary_auc(actual.ravel(), scores.ravel())
    areas = [_binary_auc(actual[:, j], scores[:, j]) for j in range(len(rows))]
    if any(a is None for a in areas):
        return None  # a class that occurs in every row or in none: its AUC is undefined
    known = np.array(areas, dtype=float)
    if found.average == "weighted":
        return float(np.average(known, weights=actual.sum(axis=0)))
    return float(np.mean(known))


def _binary_auc(actual: Any, score: Any) -> float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count one half)."""
    import numpy as np

    positives = int(actual.sum())
    negatives = actual.size - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse.ravel()]
    u = ranks[actual].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    *,
    positive: Any = None,
    average: Average | None = None,
    labels: Any = None,
) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1 and ROC AUC of predicted classes against true ones.

    The rule, the same for monitors, gates and ``models evaluate``:

    - **Classes**: the labels found in the truth or the predictions. Rows with a missing label,
      prediction or score are left out (labels not known yet). When either side is text, both
      are compared as text (``1`` and ``"1"`` are one class).
    - **average**: ``binary`` (the positive class against every other), ``macro`` (the mean
      over classes), ``weighted`` (weighted by each class's true count) or ``micro`` (counts
      pooled over classes). Default: ``binary`` when ``positive`` is given or there are at most
      two classes, ``macro`` otherwise.
    - **positive**: the positive class of average ``binary`` (``pos_label``); given as text it
      names the class with that text (``"1"`` names ``1``). Default: ``1`` (``True``) for labels
      within {0, 1} or {-1, 1}, else the greatest class (``yes`` of ``no``/``yes``). With two
      classes found, a positive that is neither is a ``ValueError``; with average other than
      ``binary``, any positive is.
    - **Precision, recall, F1** equal ``sklearn.metrics`` with ``zero_division=0``.
    - **ROC AUC** from ``y_score``: the positive class's score (1-D), or one column per class
      (2-D, in the order of ``labels``, e.g. a model's ``predict_proba`` and ``classes_``), one
      against the rest with averages other than ``binary``. Without ``y_score``, from the hard
      predictions (1 for the class predicted, 0 for the others). None when a class has no
      positive or no negative row (one class only).

    All None when no row is left.
    """
    import numpy as np

    given = [y_true, y_pred] + ([] if y_score is None else [y_score])
    columns = _drop_missing(*given)
    if not columns[0].size:
        return dict.fromkeys(CLASSIFICATION_METRICS)
    found = _labels(columns[0], columns[1], positive, average)
    chosen = None if found.positive is None else found.classes[found.positive]
    if y_score is None:
        score = np.zeros((len(found.predicted), len(found.classes)))
        score[np.arange(len(found.predicted)), found.predicted] = 1.0
        names: Any = np.array(found.classes)
    else:
        score, names = columns[2], labels
    truth = np.array(found.classes)[found.truth]
    if found.average == "binary" and found.positive is None:
        auc = None
    elif score.ndim == 1:
        auc = roc_auc(truth, score, positive=chosen, average=found.average)
    else:
        auc = _auc_of_columns(truth, score, names, chosen, found.average)
    return {
        "accuracy": float(np.mean(found.truth == found.predicted)),
        "precision": _averaged(found, "precision"),
        "recall": _averaged(found, "recall"),
        "f1": _averaged(found, "f1"),
        "roc_auc": auc,
    }


# -- model quality: regression ----------------------------------------------------------------


def _numbers(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Both columns as floats, rows with a missing value left out."""
    truth, predicted = _drop_missing(y_true, y_pred)
    try:
        return truth.astype(float), predicted.astype(float)
    except (TypeError, ValueError):
        raise ValueError("regression metrics need numbers: a label or prediction is not") from None


def mae(y_true: Any, y_pred: Any) -> float | None:
    """Mean absolute error (``sklearn.metrics.mean_absolute_error``); None when empty."""
    import numpy as np

    truth, predicted = _numbers(y_true, y_pred)
    return float(np.mean(np.abs(truth - predicted))) if truth.size else None


def rmse(y_true: Any, y_pred: Any) -> float | None:
    """Root mean squared error (``sklearn.metrics.root_mean_squared_error``); None when empty."""
    import numpy as np

    truth, predicted = _numbers(y_true, y_pred)
    return float(np.sqrt(np.mean((truth - predicted) ** 2))) if truth.size else None


def r2(y_true: Any, y_pred: Any) -> float | None:
    """Coefficient of determination (``sklearn.metrics.r2_score``); None on fewer than 2 rows.

    A constant truth gives 1.0 when predicted exactly and 0.0 otherwise (scikit-learn's
    ``force_finite``).
    """
    import numpy as np

    truth, predicted = _numbers(y_true, y_pred)
    if truth.size < 2:
        return None
    residual = float(np.sum((truth - predicted) ** 2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float | None]:
    """MAE, RMSE and R² of numeric predictions; rows with a missing value are left out."""
    return {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred), "r2": r2(y_true, y_pred)}
