"""What monitors measure beyond the statistics: the drift metrics a spec names, and data quality.

``METRICS`` says, for each drift metric a monitor spec names, which columns it fits, which way
drift goes and the threshold used when a signal names none; the computations themselves live in
:mod:`cauce.stats` (one definition each, shared with rollout analysis, gates and evaluations).
Data quality of a window's values: ``null_rate``, ``type_error_rate``, ``out_of_bounds_rate``,
and the type-error rule they share with profiles (``as_numbers``, ``category_errors``).

Every function returns Python floats, and None (never NaN) where the value is undefined, such as
an empty input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricInfo:
    """A drift metric a monitor spec can name: the columns it fits, which way drift goes, and
    the threshold used when a signal names none."""

    name: str
    kinds: tuple[str, ...]
    higher_is_drift: bool
    default_threshold: float
    description: str


_BOTH = ("numerical", "categorical")
# Defaults: 0.1 for distances, PSI's rule of thumb 0.2, a 5% level for p-values.
METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "normalized_wasserstein", ("numerical",), True, 0.1, "Wasserstein-1 / reference std"
        ),
        MetricInfo(
            "jensen_shannon", _BOTH, True, 0.1, "Jensen-Shannon distance (base 2) of the bins"
        ),
        MetricInfo("psi", _BOTH, True, 0.2, "population stability index of the bins"),
        MetricInfo(
            "ks", ("numerical",), False, 0.05, "p-value of the two-sample Kolmogorov-Smirnov test"
        ),
        MetricInfo(
            "chi_squared", ("categorical",), False, 0.05, "p-value of Pearson's chi-squared test"
        ),
        MetricInfo("chebyshev", _BOTH, True, 0.1, "largest difference of a bin's share"),
    )
}


def _series(values: Any) -> Any:
    import pandas as pd

    return values if isinstance(values, pd.Series) else pd.Series(values, dtype=_dtype(values))


def _dtype(values: Any) -> Any:
    # pd.Series([]) would warn about its default dtype; lists of mixed types stay objects
    return object if isinstance(values, (list, tuple)) and not values else None


def _present(values: Any) -> Any:
    """The non-null values of a 1-D input as a pandas Series."""
    series = _series(values)
    return series[~series.isna().to_numpy()]


def null_rate(values: Any) -> float | None:
    """Share of null values (None, NaN, NaT, pd.NA); None for an empty input."""
    series = _series(values)
    return float(series.isna().mean()) if len(series) else None


def as_numbers(present: Any) -> Any:
    """Non-null values as floats, NaN where one is not a number (the type-error rule)."""
    import numbers
    from decimal import Decimal

    import numpy as np
    import pandas as pd

    kind = getattr(present.dtype, "kind", "O")  # pandas' own dtypes have a NumPy kind too
    if kind in "iuf":
        return present.to_numpy(dtype=float)
    if kind not in "OUS":
        return np.full(len(present), np.nan)  # booleans, datetimes, durations, complex
    items = present.to_numpy(dtype=object)
    out = np.full(len(items), np.nan)
    texts: list[int] = []
    for i, value in enumerate(items):
        if type(value) in (float, int) or (
            isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, (bool, np.bool_))
        ):
            out[i] = float(value)
        elif isinstance(value, str):
            texts.append(i)
    if texts:
        out[texts] = pd.to_numeric(pd.Series(items[texts], dtype=object), errors="coerce")
    return out


def category_errors(present: Any) -> Any:
    """True where a non-null value is not a category: neither text, a bool nor an integer."""
    import math
    import numbers

    import numpy as np

    kind = getattr(present.dtype, "kind", "O")
    if kind in "biu":
        return np.zeros(len(present), dtype=bool)
    if kind == "f":
        return ~_integral(present.to_numpy(dtype=float))
    if kind not in "OUS":
        return np.ones(len(present), dtype=bool)  # datetimes, durations, complex
    items = present.to_numpy(dtype=object)
    bad = np.zeros(len(items), dtype=bool)
    for i, value in enumerate(items):
        if isinstance(value, (str, bool, np.bool_, numbers.Integral)):
            continue
        real = isinstance(value, numbers.Real) and math.isfinite(value)
        bad[i] = not (real and float(value).is_integer())
    return bad


def _integral(x: Any) -> Any:
    import numpy as np

    whole = np.isfinite(x)
    whole[whole] = np.mod(x[whole], 1) == 0  # np.mod warns on infinities: they stay False
    return whole


def type_error_rate(values: Any, expected: str) -> float | None:
    """Share of non-null values that are not of the ``expected`` kind; None when there are none.

    ``expected="numerical"``: a value is a type error unless it is a number (int, float, NumPy
    or Decimal) or text that ``pandas.to_numeric`` reads as one ("3.5", "1e3"; as the model
    signature check reads text); booleans, other text ("abc", "" or "nan"), dates and containers
    are errors. ``expected="categorical"``: a value is a type error unless it is text, a boolean
    or an integral number (2 or 2.0, as class labels); 2.5, infinities, dates and containers are.
    """
    import numpy as np

    if expected not in ("numerical", "categorical"):
        raise ValueError(f"expected must be 'numerical' or 'categorical', got {expected!r}")
    present = _present(values)
    if not len(present):
        return None
    errors = np.isnan(as_numbers(present)) if expected == "numerical" else category_errors(present)
    return float(errors.mean())


def out_of_bounds_rate(
    values: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    allowed: Any = None,
) -> float | None:
    """Share of non-null values below ``low``, above ``high``, or not in ``allowed``.

    Bounds are inclusive and apply to numbers (values that are not numbers are type errors,
    counted by ``type_error_rate``, not here). ``allowed`` lists the categories, compared as text
    as text, the way profiles read categories (1 matches "1"). Give bounds or ``allowed``, not both.
    None when there are no non-null values.
    """
    import numpy as np

    if allowed is not None and (low is not None or high is not None):
        raise ValueError("give low/high bounds or allowed categories, not both")
    present = _present(values)
    if not len(present):
        return None
    if allowed is not None:
        return float((~present.astype(str).isin({str(a) for a in allowed})).mean())
    x = as_numbers(present)
    out = np.zeros(len(x), dtype=bool)
    if low is not None:
        out |= x < low
    if high is not None:
        out |= x > high
    return float(out.mean())
