"""Model quality: classification and regression metrics, and the one rule for classes.

``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (all five with
``classification_metrics``), ``mae``, ``rmse``, ``r2`` (``regression_metrics``), each equal to
scikit-learn's, which the tests check. The rule for the known classes, the positive class and
averaging is :func:`classification_metrics`' docstring; :func:`scoring` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

Average = Literal["binary", "micro", "macro", "weighted"]
AVERAGES: tuple[str, ...] = get_args(Average)
Label = bool | int | float | str  # a class label a user names (positive)
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")

# -- model quality: classification ------------------------------------------------------------

NO_SCORE = "roc_auc needs a score of the positive class (a score column, a model's predict_proba)"
_UNDEFINED = {
    "roc_auc": "roc_auc is undefined on these rows: it needs rows of the positive class and "
    "rows of the others (of every class, when averaged), each with a score",
    "r2": "r2 needs at least two rows",
}


def undefined(metric: str) -> str:
    """Why ``metric`` is None on the rows it was given: what monitors and evaluations report."""
    return _UNDEFINED.get(metric, f"{metric} needs at least one row")


class RuleError(ValueError):
    """A positive class or average that cannot apply; ``field`` says which of the two."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_label(value: Any) -> Label | None:
    """A class label a user names (``positive``): text, a number or a boolean; or None."""
    if value is None or (isinstance(value, Label) and value != ""):
        return value
    raise ValueError(f"a class label is non-empty text, a number or a boolean, got {value!r}")


class _CheckLabel:
    """Pydantic validates a :data:`Positive` field with :func:`check_label` (one error, not one
    per type); pydantic is imported only when a spec model is built."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            check_label, json_schema_input_schema=handler.generate_schema(Label | None)
        )


# The type of a spec's ``positive`` field (monitors, gate policies).
Positive = Annotated[Label | None, _CheckLabel()]


def check_rule(positive: Any, average: Any) -> None:
    """Refuse a ``positive`` and ``average`` that cannot go together, before any row is read.

    ``average`` is one of :data:`AVERAGES` or None; ``positive`` a class label or None, and only
    with average ``binary`` (or the default). Raises :class:`RuleError` naming the field.
    """
    if average is not None and average not in AVERAGES:
        raise RuleError(f"average must be one of {', '.join(AVERAGES)}; got {average!r}", "average")
    try:
        check_label(positive)
    except ValueError as exc:
        raise RuleError(str(exc), "positive") from None
    if positive is not None and average not in (None, "binary"):
        raise RuleError(
            f"positive applies to average binary; with average {average} every class counts",
            "positive",
        )


@dataclass(frozen=True)
class Scoring:
    """How classification metrics count: the average, and the positive class of ``binary``.

    ``positive`` is the class itself, as the known classes spell it (as the labels' type does
    when none are known); None with other averages. ``classes``: the known classes the rule was
    decided from, None when unknown.
    """

    average: Average
    positive: Any = None
    classes: list[Any] | None = None


def known_classes(labels: Any) -> list[Any] | None:
    """The distinct classes of ``labels`` (a model's ``classes_``), sorted; None when none."""
    import numpy as np

    if labels is None:
        return None
    (values,) = _drop_missing(np.asarray(labels, dtype=object))
    if not values.size:
        return None
    (values,) = _as_labels(values)
    return [c.item() if hasattr(c, "item") else c for c in np.unique(values)]


def scoring(
    y_true: Any,
    y_pred: Any = None,
    *,
    positive: Any = None,
    average: Average | None = None,
    labels: Any = None,
) -> Scoring:
    """The positive class and average that classification metrics use (the rule is
    :func:`classification_metrics`'). Of the rows only their type counts (text, booleans,
    numbers), and only when no classes are known: never which classes they hold."""
    check_rule(positive, average)
    classes = known_classes(labels)
    if classes is None:
        return _by_type(_kind(*(a for a in (y_true, y_pred) if a is not None)), positive, average)
    if average is None:
        average = "binary" if positive is not None or len(classes) <= 2 else "macro"
    if average != "binary":
        return Scoring(average, None, classes)
    if positive is None:
        if len(classes) > 2:
            raise RuleError(
                f"{len(classes)} classes: give positive (that class against the others) or "
                "average macro, micro or weighted",
                "average",
            )
        return Scoring("binary", default_positive(classes), classes)
    index = _match(classes, positive)
    if index is None:
        raise RuleError(
            f"positive label {positive!r} is not one of the labels {classes}", "positive"
        )
    return Scoring("binary", classes[index], classes)


def default_positive(classes: list[Any]) -> Any:
    """The positive class of sorted known ``classes`` when none is given; None without classes.

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


def _kind(*arrays: Any) -> str:
    """``text`` when any array holds text, ``bool`` when all hold booleans, else ``number``."""
    import numpy as np
    import pandas as pd

    kinds = []
    for array in arrays:
        values = np.asarray(array).ravel()
        if values.dtype.kind == "O":  # typed by its values, when it has any
            values = np.array([v for v in values.tolist() if not pd.isna(v)])
            if not values.size:
                continue
        kinds.append({"U": "text", "S": "text", "b": "bool"}.get(values.dtype.kind, "number"))
    if "text" in kinds:
        return "text"
    return "bool" if kinds and set(kinds) == {"bool"} else "number"


def _by_type(kind: str, positive: Any, average: Average | None) -> Scoring:
    """The rule when no classes are known: fixed by the labels' type, not by the rows.

    Average ``binary`` unless one is given; positive ``True`` for booleans and ``1`` for
    numbers (scikit-learn's ``pos_label=1``); text labels must name theirs.
    """
    if average not in (None, "binary"):
        return Scoring(average)
    if positive is None:
        if kind == "text":
            raise RuleError(
                "the labels are text and their classes are not known: name positive (or give an "
                "average), or the classes",
                "positive",
            )
        return Scoring("binary", True if kind == "bool" else 1)
    return Scoring("binary", _typed(positive, kind))


def _typed(positive: Any, kind: str) -> Any:
    """``positive`` in the labels' type: ``1``, ``1.0`` and ``True`` name one number class."""
    if kind == "text":
        return _category(positive) if not isinstance(positive, str) else positive
    if kind == "bool" and isinstance(positive, bool):
        return positive
    if kind == "bool" and _same_number(positive, 1):
        return True
    if kind == "bool" and _same_number(positive, 0):
        return False
    if kind == "bool" and str(positive).lower() in ("true", "false"):
        return str(positive).lower() == "true"
    if kind == "number" and _same_number(positive, positive):
        value = float(positive)
        return int(value) if value.is_integer() else value
    raise RuleError(f"positive {positive!r} cannot name a class of {kind} labels", "positive")


def _category(value: Any) -> str:
    """The text of a class label: ``True``, ``3`` (not ``3.0``), ``yes``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def label_text(value: Any) -> str:
    """The stored text of a class (an evaluation's positive): ``1`` for ``1`` and ``1.0``."""
    return _category(value.item() if hasattr(value, "item") else value)


@dataclass(frozen=True)
class _Labels:
    """True and predicted labels as indices into the classes they hold, and how to average."""

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
    """The index of the class ``label`` names: equal, or equal as text or number ("1" names 1)."""
    for i, c in enumerate(classes):
        if c == label and isinstance(c, str) == isinstance(label, str):
            return i
    for i, c in enumerate(classes):
        if str(c) == str(label) or _same_number(c, label):
            return i
    return None


def _same_number(value: Any, label: Any) -> bool:
    try:
        return bool(float(value) == float(label))
    except (TypeError, ValueError):
        return False


def _labels(y_true: Any, y_pred: Any, rule: Scoring) -> _Labels:
    """The classes both label arrays hold, as indices, with the rule's positive among them."""
    import numpy as np

    truth, predicted = _as_labels(y_true, y_pred)
    found = np.unique(np.concatenate([truth, predicted]))
    classes = [c.item() if hasattr(c, "item") else c for c in found]
    positive = _match(classes, rule.positive) if rule.average == "binary" else None
    return _Labels(
        classes,
        np.searchsorted(found, truth),
        np.searchsorted(found, predicted),
        rule.average,
        positive,
    )


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


def _counted(
    metric: str, y_true: Any, y_pred: Any, positive: Any, average: Average | None, labels: Any
) -> float | None:
    truth, predicted = _drop_missing(y_true, y_pred)
    rule = scoring(truth, predicted, positive=positive, average=average, labels=labels)
    return _averaged(_labels(truth, predicted, rule), metric)


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
    y_true: Any,
    y_pred: Any,
    *,
    positive: Any = None,
    average: Average | None = None,
    labels: Any = None,
) -> float | None:
    """Precision (``sklearn.metrics.precision_score``, ``zero_division=0``); None when empty.

    ``labels`` are the known classes; they, ``positive`` and ``average`` follow
    :func:`classification_metrics`' rule.
    """
    return _counted("precision", y_true, y_pred, positive, average, labels)


def recall(
    y_true: Any,
    y_pred: Any,
    *,
    positive: Any = None,
    average: Average | None = None,
    labels: Any = None,
) -> float | None:
    """Recall (``sklearn.metrics.recall_score``, ``zero_division=0``); None when empty.

    ``labels`` are the known classes; they, ``positive`` and ``average`` follow
    :func:`classification_metrics`' rule.
    """
    return _counted("recall", y_true, y_pred, positive, average, labels)


def f1(
    y_true: Any,
    y_pred: Any,
    *,
    positive: Any = None,
    average: Average | None = None,
    labels: Any = None,
) -> float | None:
    """F1 (``sklearn.metrics.f1_score``, ``zero_division=0``); None when empty.

    ``labels`` are the known classes; they, ``positive`` and ``average`` follow
    :func:`classification_metrics`' rule.
    """
    return _counted("f1", y_true, y_pred, positive, average, labels)


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
    the sorted classes of ``y_true``). ``labels``, ``positive`` and ``average`` follow
    :func:`classification_metrics`' rule. Rows with a missing label or score are left out.
    """
    truth, score = _drop_missing(y_true, y_score)
    rule = scoring(truth, positive=positive, average=average, labels=labels)
    if score.ndim == 2:
        return _auc_of_columns(truth, score, labels, rule)
    if rule.average != "binary":
        raise ValueError(
            "a 1-D score is the positive class's score: with more than two classes give "
            "positive, or one score column per class"
        )
    if not truth.size:
        return None
    found = _labels(truth, truth, rule)
    if found.positive is None:
        return None
    return _binary_auc(found.truth == found.positive, score.astype(float))


def _auc_of_columns(truth: Any, score: Any, labels: Any, rule: Scoring) -> float | None:
    """ROC AUC from one score column per class: binary from the positive's, else one-vs-rest."""
    import numpy as np

    score = score.astype(float)
    names = np.unique(_as_labels(truth)[0]) if labels is None else np.asarray(labels)
    if len(names) != score.shape[1]:
        raise ValueError(f"{score.shape[1]} score columns for {len(names)} labels")
    if not truth.size:
        return None
    truth, names = _as_labels(truth, names)
    found = _labels(truth, names, rule)  # the classes of the rows and of the columns
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

    The rule, the same for monitors, gates and ``models evaluate`` (:func:`scoring` says what
    it decides):

    - **Known classes** (``labels``): the classes the model has (a scikit-learn classifier's
      ``classes_``, the labels of a monitor's reference). They alone decide the defaults and
      check ``positive``; which classes the rows happen to hold never does.
    - **average**: ``binary`` (the positive class against every other), ``macro`` (the mean
      over classes), ``weighted`` (weighted by each class's true count) or ``micro`` (counts
      pooled over classes), over the classes the rows hold (scikit-learn's). Default:
      ``binary`` when ``positive`` is given or at most two classes are known, ``macro`` for
      more.
    - **positive**: the positive class of average ``binary`` (``pos_label``); given as text it
      names the class with that text (``"1"`` names ``1``, ``1.0`` and ``True`` too). Default:
      ``1`` (``True``) for known classes within {0, 1} or {-1, 1}, else the greatest known class
      (``yes`` of ``no``/``yes``). A positive that is none of the known classes is a
      ``RuleError``; so is any positive with an average other than ``binary``.
    - **No known classes**: the labels' type decides, never the rows: average ``binary``,
      positive ``True`` for booleans and ``1`` for numbers (scikit-learn's default); text
      labels must name their positive (or give an average).
    - **Rows** with a missing label, prediction or score are left out. When either side is
      text, both are compared as text (``1`` and ``"1"`` are one class). A positive class that
      no row holds gives precision, recall and F1 of 0 (scikit-learn's ``zero_division=0``).
    - **ROC AUC** needs ``y_score``: the positive class's score (1-D), or one column per class
      (2-D, in the order of ``labels``, e.g. a model's ``predict_proba`` and ``classes_``), one
      against the rest with averages other than ``binary``. None without ``y_score``
      (:data:`NO_SCORE`), and where a class has no positive or no negative row.

    All None when no row is left.
    """
    import numpy as np

    given = [y_true, y_pred] + ([] if y_score is None else [y_score])
    columns = _drop_missing(*given)
    rule = scoring(columns[0], columns[1], positive=positive, average=average, labels=labels)
    if not columns[0].size:
        return dict.fromkeys(CLASSIFICATION_METRICS)
    found = _labels(columns[0], columns[1], rule)
    auc = None
    if y_score is not None:
        truth = np.array(found.classes)[found.truth]
        fixed = {"positive": rule.positive, "average": rule.average, "labels": labels}
        auc = roc_auc(truth, columns[2], **fixed)
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
