"""Statistics: distances, tests and model-quality metrics, one definition each.

Monitors (drift, prediction drift, model performance), rollout analysis, gates and
``models evaluate`` all compute their numbers here, so two of them cannot disagree about the same
rows. Each function equals its reference implementation (SciPy, scikit-learn), which the tests
check; each returns Python floats, and None (never NaN) where the value is undefined, such as an
empty sample or a ROC AUC with one class. A bad argument raises ``ValueError``.

Distances and tests between distributions are in :mod:`cauce.stats.distances`; model-quality
metrics, and the one rule for classes, the positive class and averaging, in
:mod:`cauce.stats.quality`. Both are read from here (``from cauce import stats``).

NumPy, SciPy, pandas and pydantic are imported inside the functions: ``import cauce`` stays fast.
"""

from cauce.stats.distances import (
    DEFAULT_BINS,
    chebyshev_distance,
    chi_squared,
    frequencies,
    histograms,
    is_categorical,
    jensen_shannon,
    jensen_shannon_distance,
    ks_2samp,
    normalized_wasserstein,
    psi,
)
from cauce.stats.quality import (
    AVERAGES,
    CLASSIFICATION_METRICS,
    NO_SCORE,
    REGRESSION_METRICS,
    Average,
    Label,
    Positive,
    RuleError,
    Scoring,
    accuracy,
    check_label,
    check_rule,
    classification_metrics,
    default_positive,
    f1,
    known_classes,
    label_text,
    mae,
    precision,
    r2,
    recall,
    regression_metrics,
    rmse,
    roc_auc,
    scoring,
    undefined,
)

__all__ = [
    "AVERAGES",
    "CLASSIFICATION_METRICS",
    "DEFAULT_BINS",
    "NO_SCORE",
    "REGRESSION_METRICS",
    "Average",
    "Label",
    "Positive",
    "RuleError",
    "Scoring",
    "accuracy",
    "chebyshev_distance",
    "check_label",
    "check_rule",
    "chi_squared",
    "classification_metrics",
    "default_positive",
    "f1",
    "frequencies",
    "histograms",
    "is_categorical",
    "jensen_shannon",
    "jensen_shannon_distance",
    "known_classes",
    "ks_2samp",
    "label_text",
    "mae",
    "normalized_wasserstein",
    "precision",
    "psi",
    "r2",
    "recall",
    "regression_metrics",
    "rmse",
    "roc_auc",
    "scoring",
    "undefined",
]
