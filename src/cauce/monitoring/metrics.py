"""Distribution distances between a reference and a current sample.

Each function takes two samples and returns a number equal to the reference implementation in
SciPy on the same binning: probabilities are counts over the bins (numerical: bin edges shared
by both samples; categorical: the union of categories), and
``scipy.spatial.distance.jensenshannon(p, q, base=2)`` gives the Jensen-Shannon distance, 0 for
identical distributions and 1 for disjoint ones.
"""

from __future__ import annotations

from typing import Any

DEFAULT_BINS = 20


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
    """Jensen-Shannon distance (base 2) between two samples; None when either is empty."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    if is_categorical(reference) or is_categorical(current):
        p, q = frequencies(reference, current)
    else:
        p, q = histograms(reference, current, bins)
    if p.sum() == 0 or q.sum() == 0:
        return None
    return float(np.nan_to_num(jensenshannon(p, q, base=2)))
