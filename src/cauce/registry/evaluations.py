"""Model evaluations: a model version's metrics on one dataset version, stored once.

:func:`evaluate` scores a dataset version with a registered model (the label column is left out
of the features) and stores the metrics; evaluating the same version on the same dataset version
and label again returns the stored row. What is measured follows from the label:

- **classification** when the label is boolean, text or categorical, or integer with at most two
  distinct values (or any integer label when the model is a scikit-learn classifier): accuracy,
  precision, recall and f1, and ``roc_auc`` from ``predict_proba`` when the model has it, by
  :func:`cauce.stats.classification_metrics`' rule (the one monitors use): ``positive`` and
  ``average`` as given, by default the positive class of two (``True``, ``1``, or the greater
  value) and macro averages for more;
- **regression** otherwise (floats, integers with more values): ``mae``, ``rmse``, ``r2``.

Rows whose label is missing are left out. An evaluation is stored once per model version,
dataset version, label, positive class and average. Each new evaluation writes a lineage edge
dataset version → model version (``evaluated_on``) and an audit event in the same transaction.

Example::

    result = cauce.evaluations.evaluate(
        "models:/churn/4", "customers_holdout@3", label="churned"
    )
    print(result.metrics["roc_auc"])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from cauce import stats
from cauce.errors import InvalidInput
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.store import insert_ignore, new_id, now_ms
from cauce.store.schema import dataset_versions, datasets, model_evaluations
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd

    from cauce.data.assets import DatasetVersion
    from cauce.registry.models import ModelVersion


__all__ = [
    "Evaluation",
    "evaluate",
    "evaluations",
    "get_evaluation",
]


@dataclass(frozen=True)
class Evaluation:
    """One model version's metrics on one dataset version, for one label column."""

    id: str
    model: str
    version: int
    model_version_id: str
    dataset: str  # name@version
    dataset_version_id: str
    label: str
    metrics: dict[str, float]
    rows: int
    created_at: int
    positive: str | None = None  # as asked for, as text; None: the default
    average: str | None = None

    @property
    def task(self) -> str:
        """``classification`` or ``regression``, read from the metrics measured."""
        return "regression" if "rmse" in self.metrics else "classification"

    @property
    def model_uri(self) -> str:
        """``models:/name/version``."""
        return f"models:/{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**asdict(self), "task": self.task, "model_uri": self.model_uri}


def evaluate(
    model_uri: str,
    data: DatasetVersion | str,
    *,
    label: str,
    prediction: str | None = None,
    positive: stats.Label | None = None,
    average: stats.Average | None = None,
    workspace: Workspace | None = None,
) -> Evaluation:
    """Score dataset version ``data`` with a model version and store its metrics (once).

    ``data`` is a DatasetVersion or ``name@version`` (``name`` alone: the newest version).
    ``prediction`` names the output column to score when the model returns a table with
    several columns. ``positive`` and ``average`` choose how classification metrics count
    (:func:`cauce.stats.classification_metrics`; default: its rule). The stored evaluation of
    the same version, dataset version, label, positive and average is returned as it is,
    without scoring again.
    """
    from cauce.data.assets import load, resolve_version
    from cauce.registry.models import load as load_model
    from cauce.registry.models import resolve

    rule = _rule(positive, average)
    ws = workspace or current()
    version = resolve(model_uri, workspace=ws)
    dataset = resolve_version(_dataset_ref(data), workspace=ws)
    if not isinstance(label, str) or label not in dataset.schema:
        raise InvalidInput(
            f"label column {label!r} is not in dataset version {dataset.ref}",
            hint=f"its columns: {', '.join(dataset.schema)}",
            details={"field": "label"},
        )
    inputs = (version.signature or {}).get("inputs") or {}
    if label in [c["name"] for c in inputs.get("columns", [])]:
        raise InvalidInput(
            f"label {label!r} is one of the model's input columns: it cannot also be the label",
            details={"field": "label"},
        )
    with ws.store.read() as conn:
        stored = _find(conn, version, dataset, label, rule)
    if stored is not None:
        return stored

    frame = load(dataset, workspace=ws)
    frame = frame[frame[label].notna()]
    if frame.empty:
        raise InvalidInput(f"dataset version {dataset.ref} has no rows with a {label!r} value")
    truth = frame[label]
    features = frame.drop(columns=[label])
    model = load_model(version.uri, workspace=ws)  # pinned: an alias may move meanwhile
    native = model.unwrap()
    names = getattr(native, "feature_names_in_", None)
    if not model.signature and names is not None and set(names) <= set(features.columns):
        features = features[list(names)]  # extra columns (ids, timestamps) are not features
    predicted = _output(model.predict(features), prediction)
    metrics = _metrics(truth, predicted, model, features, positive, average)

    evaluation_id = new_id()
    values: dict[str, Any] = {
        "id": evaluation_id,
        "model_version_id": version.id,
        "dataset_version_id": dataset.id,
        "label": label,
        **rule,
        "metrics": metrics,
        "rows": len(frame),
        "created_at": now_ms(),
    }
    with ws.store.write() as conn:
        if not insert_ignore(conn, model_evaluations, values):
            # Another process stored the same evaluation first: its row is the evaluation.
            found = _find(conn, version, dataset, label, rule)
            assert found is not None
            return found
        add_edge(
            conn, ("dataset_version", dataset.id), ("model_version", version.id), "evaluated_on"
        )
        audit.record(
            conn,
            ws.user,
            "model_evaluation.create",
            "model_evaluation",
            evaluation_id,
            after={
                "model": version.uri,
                "dataset_version": dataset.ref,
                "label": label,
                **{k: v for k, v in rule.items() if v},
                "rows": len(frame),
                "metrics": metrics,
            },
        )
    return _evaluation(version.name, version.version, dataset.ref, values)


def get_evaluation(
    model_uri: str,
    data: DatasetVersion | str,
    *,
    label: str,
    positive: stats.Label | None = None,
    average: stats.Average | None = None,
    workspace: Workspace | None = None,
) -> Evaluation | None:
    """The stored evaluation of a model version on a dataset version and label (measured with
    ``positive`` and ``average``), or None."""
    from cauce.data.assets import resolve_version
    from cauce.registry.models import resolve

    rule = _rule(positive, average)
    ws = workspace or current()
    version = resolve(model_uri, workspace=ws)
    dataset = resolve_version(_dataset_ref(data), workspace=ws)
    with ws.store.read() as conn:
        return _find(conn, version, dataset, label, rule)


def evaluations(model_uri: str, *, workspace: Workspace | None = None) -> list[Evaluation]:
    """Every stored evaluation of a model version, oldest first."""
    from cauce.registry.models import resolve

    ws = workspace or current()
    version = resolve(model_uri, workspace=ws)
    e = model_evaluations.c
    query = (
        select(model_evaluations, datasets.c.name, dataset_versions.c.version.label("dv"))
        .join(dataset_versions, dataset_versions.c.id == e.dataset_version_id)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(e.model_version_id == version.id)
        .order_by(e.created_at, e.id)
    )
    with ws.store.read() as conn:
        rows = conn.execute(query).all()
    return [
        _evaluation(version.name, version.version, f"{r.name}@{r.dv}", r._mapping) for r in rows
    ]


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better: errors and losses."""
    name = metric.lower()
    return name in ("mae", "mse", "rmse", "log_loss", "logloss") or name.endswith(("error", "loss"))


# -- helpers --------------------------------------------------------------------------------


def _dataset_ref(data: Any) -> Any:
    return data.removeprefix("datasets:/") if isinstance(data, str) else data


def _rule(positive: Any, average: Any) -> dict[str, str]:
    """The stored form of a positive class and an average: text, '' for the default."""
    if average is not None and average not in stats.AVERAGES:
        raise InvalidInput(
            f"average must be one of {', '.join(stats.AVERAGES)}, got {average!r}",
            details={"field": "average"},
        )
    if positive is not None and average not in (None, "binary"):
        raise InvalidInput(
            f"positive applies to average binary; with average {average} every class counts",
            details={"field": "positive"},
        )
    try:
        stats.check_label(positive)
    except ValueError as exc:
        raise InvalidInput(f"positive: {exc}", details={"field": "positive"}) from None
    return {"positive": "" if positive is None else str(positive), "average": average or ""}


def _find(
    conn: Connection,
    version: ModelVersion,
    dataset: DatasetVersion,
    label: str,
    rule: dict[str, str],
) -> Evaluation | None:
    e = model_evaluations.c
    row = conn.execute(
        select(model_evaluations).where(
            e.model_version_id == version.id,
            e.dataset_version_id == dataset.id,
            e.label == label,
            e.positive == rule["positive"],
            e.average == rule["average"],
        )
    ).first()
    if row is None:
        return None
    return _evaluation(version.name, version.version, dataset.ref, row._mapping)


def _evaluation(model: str, version: int, dataset: str, row: Any) -> Evaluation:
    return Evaluation(
        id=row["id"],
        model=model,
        version=version,
        model_version_id=row["model_version_id"],
        dataset=dataset,
        dataset_version_id=row["dataset_version_id"],
        label=row["label"],
        metrics={k: float(v) for k, v in dict(row["metrics"]).items()},
        rows=int(row["rows"]),
        created_at=row["created_at"],
        positive=row["positive"] or None,
        average=row["average"] or None,
    )


def _output(predicted: Any, column: str | None) -> Any:
    """The predictions as one 1-D array (a column of a table output, when there are several)."""
    import numpy as np
    import pandas as pd

    if isinstance(predicted, pd.DataFrame):
        if column is None:
            if predicted.shape[1] == 1:
                column = str(predicted.columns[0])
            elif "prediction" in predicted.columns:
                column = "prediction"
            else:
                raise InvalidInput(
                    f"the model returns the columns {', '.join(map(str, predicted.columns))}",
                    hint="name the one to score with prediction= (CLI: --prediction)",
                    details={"field": "prediction"},
                )
        if column not in predicted.columns:
            raise InvalidInput(
                f"the model's output has no column {column!r}",
                hint=f"its columns: {', '.join(map(str, predicted.columns))}",
                details={"field": "prediction"},
            )
        return predicted[column].to_numpy()
    if column is not None:
        raise InvalidInput(
            f"prediction={column!r} names an output column, but the model returns an array",
            details={"field": "prediction"},
        )
    array = np.asarray(predicted)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1:
        raise InvalidInput(
            f"the model returns an array of shape {list(array.shape)}: one value per row is needed"
        )
    return array


def _is_classification(truth: pd.Series, native: Any) -> bool:
    import pandas as pd
    from pandas.api import types

    if types.is_bool_dtype(truth) or isinstance(truth.dtype, pd.CategoricalDtype):
        return True
    if types.is_object_dtype(truth) or types.is_string_dtype(truth):
        return True
    if types.is_integer_dtype(truth):
        if truth.nunique() <= 2:
            return True
        from sklearn.base import is_classifier

        return bool(is_classifier(native))
    return False


def _metrics(
    truth: pd.Series,
    predicted: Any,
    model: Any,
    features: Any,
    positive: stats.Label | None,
    average: stats.Average | None,
) -> dict[str, float]:
    if _is_classification(truth, model.unwrap()):
        return _classification(truth, predicted, model, features, positive, average)
    if positive is not None or average is not None:
        raise InvalidInput(
            f"positive and average apply to classification labels; label {truth.name!r} is "
            "numeric (a regression)",
            details={"field": "positive" if positive is not None else "average"},
        )
    return _regression(truth, predicted)


def _regression(truth: pd.Series, predicted: Any) -> dict[str, float]:
    try:
        metrics = stats.regression_metrics(truth.to_numpy(), predicted)
    except ValueError:
        raise InvalidInput(
            "the label is numeric (a regression) but the model's predictions are not numbers"
        ) from None
    return {k: v for k, v in metrics.items() if v is not None}  # r2 needs two rows


def _classification(
    truth: pd.Series,
    predicted: Any,
    model: Any,
    features: Any,
    positive: stats.Label | None,
    average: stats.Average | None,
) -> dict[str, float]:
    import numpy as np

    y = truth.to_numpy()
    pred = np.asarray(predicted)
    if truth.dtype.kind in "biu" and pred.dtype.kind == "f":
        pred = pred.round().astype(truth.dtype)  # a classifier that returns 0.0/1.0
    proba, classes = _probabilities(model, features)
    try:
        metrics = stats.classification_metrics(
            y, pred, proba, positive=positive, average=average, labels=classes
        )
    except ValueError as exc:
        raise InvalidInput(
            f"cannot score label {truth.name!r}: {exc}",
            details={"field": "positive" if positive is not None else "average"},
        ) from None
    if proba is None:
        metrics.pop("roc_auc")  # ranking rows by hard predictions says little of a model
    return {k: v for k, v in metrics.items() if v is not None}


def _probabilities(model: Any, features: Any) -> tuple[Any, list[Any] | None]:
    """The model's class probabilities and their classes, when it has ``predict_proba``."""
    import numpy as np

    from cauce.registry.signature import validate_input

    native = model.unwrap()
    proba_of = getattr(native, "predict_proba", None)
    known = getattr(native, "classes_", None)
    if not callable(proba_of) or known is None:
        return None, None
    signature = model.signature or {}
    proba = np.asarray(proba_of(validate_input(signature.get("inputs"), features)))
    if proba.ndim != 2 or proba.shape[1] != len(known):
        return None, None
    return proba, list(known)
