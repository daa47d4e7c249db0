"""Model evaluations: a model version's metrics on one dataset version, stored once.

:func:`evaluate` scores a dataset version with a registered model (the label column is left out
of the features) and stores the metrics; evaluating the same version on the same dataset version
and label again returns the stored row. What is measured follows from the label:

- **classification** when the label is boolean, text or categorical, or integer with at most two
  distinct values (or any integer label when the model is a scikit-learn classifier): accuracy,
  precision, recall and f1 (of the positive class for two classes: ``True``, ``1``, or the
  larger of the two values; macro averages for more), and ``roc_auc`` when the model has
  ``predict_proba`` and both classes occur;
- **regression** otherwise (floats, integers with more values): ``mae``, ``rmse``, ``r2``.

Rows whose label is missing are left out. Each new evaluation writes a lineage edge
dataset version → model version (``evaluated_on``) and an audit event in the same transaction.

Example::

    result = cauce.registry.evaluations.evaluate(
        "models:/churn/4", "customers_holdout@3", label="churned"
    )
    print(result.metrics["roc_auc"])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

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

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")


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
    workspace: Workspace | None = None,
) -> Evaluation:
    """Score dataset version ``data`` with a model version and store its metrics (once).

    ``data`` is a DatasetVersion or ``name@version`` (``name`` alone: the newest version).
    ``prediction`` names the output column to score when the model returns a table with
    several columns. The stored evaluation of the same version, dataset version and label is
    returned as it is, without scoring again.
    """
    from cauce.data.assets import load, resolve_version
    from cauce.registry.models import load as load_model
    from cauce.registry.models import resolve

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
        stored = _find(conn, version, dataset, label)
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
    metrics = _metrics(truth, predicted, model, features)

    evaluation_id = new_id()
    values: dict[str, Any] = {
        "id": evaluation_id,
        "model_version_id": version.id,
        "dataset_version_id": dataset.id,
        "label": label,
        "metrics": metrics,
        "rows": len(frame),
        "created_at": now_ms(),
    }
    with ws.store.write() as conn:
        if not insert_ignore(conn, model_evaluations, values):
            # Another process stored the same evaluation first: its row is the evaluation.
            found = _find(conn, version, dataset, label)
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
    workspace: Workspace | None = None,
) -> Evaluation | None:
    """The stored evaluation of a model version on a dataset version and label, or None."""
    from cauce.data.assets import resolve_version
    from cauce.registry.models import resolve

    ws = workspace or current()
    version = resolve(model_uri, workspace=ws)
    dataset = resolve_version(_dataset_ref(data), workspace=ws)
    with ws.store.read() as conn:
        return _find(conn, version, dataset, label)


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


def _find(
    conn: Connection, version: ModelVersion, dataset: DatasetVersion, label: str
) -> Evaluation | None:
    e = model_evaluations.c
    row = conn.execute(
        select(model_evaluations).where(
            e.model_version_id == version.id,
            e.dataset_version_id == dataset.id,
            e.label == label,
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


def _metrics(truth: pd.Series, predicted: Any, model: Any, features: Any) -> dict[str, float]:
    if _is_classification(truth, model.unwrap()):
        return _classification(truth, predicted, model, features)
    return _regression(truth, predicted)


def _regression(truth: pd.Series, predicted: Any) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    try:
        values = np.asarray(predicted, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput(
            "the label is numeric (a regression) but the model's predictions are not numbers"
        ) from None
    y = truth.to_numpy(dtype=float)
    metrics = {
        "mae": float(mean_absolute_error(y, values)),
        "rmse": math.sqrt(float(mean_squared_error(y, values))),
    }
    if len(y) > 1:  # r2 is undefined on a single row
        metrics["r2"] = float(r2_score(y, values))
    return metrics


def _classification(
    truth: pd.Series, predicted: Any, model: Any, features: Any
) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = truth.to_numpy()
    pred = np.asarray(predicted)
    if truth.dtype.kind in "biu" and pred.dtype.kind == "f":
        pred = pred.round().astype(truth.dtype)  # a classifier that returns 0.0/1.0
    if pred.dtype.kind != y.dtype.kind and (pred.dtype.kind in "OUS" or y.dtype.kind in "OUS"):
        # Text labels against numbers (or the reverse): compare them as text.
        y, pred = y.astype(str), pred.astype(str)
    classes = sorted(set(np.unique(y).tolist()) | set(np.unique(pred).tolist()), key=_order)
    binary = len(classes) <= 2
    positive = classes[-1]
    average: dict[str, Any] = (
        {"average": "binary", "pos_label": positive} if binary else {"average": "macro"}
    )
    metrics = {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0, **average)),
        "recall": float(recall_score(y, pred, zero_division=0, **average)),
        "f1": float(f1_score(y, pred, zero_division=0, **average)),
    }
    auc = _roc_auc(y, model, features, positive, binary, roc_auc_score)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _roc_auc(
    y: Any, model: Any, features: Any, positive: Any, binary: bool, score: Any
) -> float | None:
    """ROC AUC from ``predict_proba``, when the model has it and every class occurs."""
    import numpy as np

    from cauce.registry.signature import validate_input

    native = model.unwrap()
    proba_of = getattr(native, "predict_proba", None)
    known = getattr(native, "classes_", None)
    if not callable(proba_of) or known is None or len(np.unique(y)) < 2:
        return None
    signature = model.signature or {}
    proba = np.asarray(proba_of(validate_input(signature.get("inputs"), features)))
    labels = [str(c) for c in known] if y.dtype.kind in "OUS" else list(known)
    if binary:
        if positive not in labels or proba.ndim != 2:
            return None
        return float(score(y == positive, proba[:, labels.index(positive)]))
    if set(np.unique(y).tolist()) - set(labels):
        return None  # a class the model never saw: no probability column for it
    try:
        return float(score(y, proba, multi_class="ovr", labels=labels))
    except ValueError:  # a class absent from the data: its one-vs-rest AUC is undefined
        return None


def _order(value: Any) -> tuple[int, Any]:
    """Sort key that orders numbers by value and everything else as text."""
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value))
