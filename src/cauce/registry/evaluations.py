"""Model evaluations: a model version's metrics on one dataset version, stored once.

:func:`evaluate` scores a dataset version with a registered model (the label column is left out
of the features) and stores the metrics; evaluating the same version on the same dataset version
and label again returns the stored row. What is measured follows from the label:

- **classification** when the label is boolean, text or categorical, or integer with at most two
  distinct values (or any integer label when the model is a scikit-learn classifier): accuracy,
  precision, recall and f1, and ``roc_auc`` from ``predict_proba`` (not computed without it, with
  the reason), by :func:`cauce.stats.classification_metrics`' rule (the one monitors use): the
  positive class and average decided from the model's ``classes_``, never from the classes the
  dataset happens to hold;
- **regression** otherwise (floats, integers with more values): ``mae``, ``rmse``, ``r2``.

Rows whose label is missing are left out. An evaluation is stored once per model version,
dataset version, label, and the positive class and average it counted by (the class a
``positive`` matched: ``True``, ``1`` and ``1.0`` on a 0/1 label are one evaluation). Each new
evaluation writes a lineage edge dataset version → model version (``evaluated_on``) and an audit
event in the same transaction.

Example::

    result = cauce.evaluations.evaluate(
        "models:/churn/4", "customers_holdout@3", label="churned"
    )
    print(result.metrics["roc_auc"])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from cauce import stats
from cauce.data.assets import DatasetVersion
from cauce.errors import InvalidInput
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.store import insert_ignore, new_id, now_ms
from cauce.store.schema import dataset_versions, datasets, model_evaluations
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd

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
    positive: str | None = None  # the positive class counted (average binary), as text
    average: str | None = None  # the average counted; None for a regression
    not_computed: dict[str, str] = field(default_factory=dict)  # metric → why it is missing

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


@operation("POST /evaluations", idempotent=True)  # stored once: evaluating again reads it
def evaluate(
    model_uri: str,
    data: DatasetVersion | str,
    *,
    label: str,
    prediction: str | None = None,
    positive: stats.Positive = None,
    average: stats.Average | None = None,
    workspace: Workspace | None = None,
) -> Evaluation:
    """Score dataset version ``data`` with a model version and store its metrics (once).

    ``data`` is a DatasetVersion or ``name@version`` (``name`` alone: the newest version).
    ``prediction`` names the output column to score when the model returns a table with
    several columns. ``positive`` and ``average`` choose how classification metrics count
    (:func:`cauce.stats.classification_metrics`; default: its rule, from the model's classes).
    The stored evaluation that counted by the same positive class and average is returned as
    it is, without scoring again.
    """
    ws = workspace or current()
    scored = _prepare(ws, model_uri, data, label, positive, average)
    version, dataset = scored.version, scored.dataset
    with ws.store.read() as conn:
        stored = _find(conn, scored)
    if stored is not None:
        return stored

    predicted = _output(scored.model.predict(scored.features), prediction)
    metrics, reasons = _metrics(scored, predicted)
    evaluation_id = new_id()
    values: dict[str, Any] = {
        "id": evaluation_id,
        "model_version_id": version.id,
        "dataset_version_id": dataset.id,
        "label": label,
        **scored.key,
        "metrics": {**metrics, **reasons},  # a number, or why the metric is missing
        "rows": len(scored.truth),
        "created_at": now_ms(),
    }
    with ws.store.write() as conn:
        if not insert_ignore(conn, model_evaluations, values):
            # Another process stored the same evaluation first: its row is the evaluation.
            found = _find(conn, scored)
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
                **{k: v for k, v in scored.key.items() if v},
                "rows": len(scored.truth),
                "metrics": metrics,
                **({"not_computed": reasons} if reasons else {}),
            },
        )
    return _evaluation(version.name, version.version, dataset.ref, values)


# POST: a JSON body keeps ``positive``'s type (True, 1 and "1" are different classes), which a
# query string would not.
@operation("POST /evaluations/lookup", role="viewer", idempotent=True)
def get_evaluation(
    model_uri: str,
    data: DatasetVersion | str,
    *,
    label: str,
    positive: stats.Positive = None,
    average: stats.Average | None = None,
    workspace: Workspace | None = None,
) -> Evaluation | None:
    """The stored evaluation of a model version on a dataset version and label that counted
    by the positive class and average ``positive`` and ``average`` decide, or None."""
    ws = workspace or current()
    scored = _prepare(ws, model_uri, data, label, positive, average)
    with ws.store.read() as conn:
        return _find(conn, scored)


@operation("GET /evaluations")
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
    # A DatasetVersion is resolved again by name@version: through a server, a client names
    # the version, it does not vouch for its id.
    if isinstance(data, DatasetVersion):
        return data.ref
    return data.removeprefix("datasets:/") if isinstance(data, str) else data


@dataclass
class _Scored:
    """What an evaluation scores, and the rule and key it is stored under."""

    version: ModelVersion
    dataset: DatasetVersion
    label: str
    truth: pd.Series  # the labelled rows' labels
    features: pd.DataFrame
    model: Any  # the loaded model
    rule: stats.Scoring | None  # None: a regression
    key: dict[str, str]  # the stored positive (the class, as text) and average; '' for none
    asked: dict[str, str]  # the rule as asked for, as text: the key before the class was matched

    @property
    def classes(self) -> list[Any] | None:
        """The model's classes (a scikit-learn classifier's ``classes_``), or None."""
        return stats.known_classes(getattr(self.model.unwrap(), "classes_", None))


def _prepare(
    ws: Workspace,
    model_uri: str,
    data: Any,
    label: str,
    positive: Any,
    average: Any,
) -> _Scored:
    """The version, the labelled rows and the rule they count by, checked."""
    from cauce.data.assets import load, resolve_version
    from cauce.registry.models import load as load_model
    from cauce.registry.models import resolve

    try:
        stats.check_rule(positive, average)
    except stats.RuleError as exc:
        raise InvalidInput(str(exc), details={"field": exc.field}) from None
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
    asked = {"positive": "" if positive is None else str(positive), "average": average or ""}
    scored = _Scored(version, dataset, label, truth, features, model, None, asked, asked)
    if not _is_classification(truth, native):
        if positive is not None or average is not None:
            raise InvalidInput(
                f"positive and average apply to classification labels; label {label!r} is "
                "numeric (a regression)",
                details={"field": "positive" if positive is not None else "average"},
            )
        return scored
    try:
        rule = stats.scoring(
            truth.to_numpy(), positive=positive, average=average, labels=scored.classes
        )
    except stats.RuleError as exc:
        raise InvalidInput(
            f"cannot score label {label!r}: {exc}", details={"field": exc.field}
        ) from None
    scored.rule = rule
    scored.key = {
        "positive": "" if rule.positive is None else stats.label_text(rule.positive),
        "average": rule.average,
    }
    return scored


def _find(conn: Connection, scored: _Scored) -> Evaluation | None:
    """The stored evaluation under the scored key; else one stored before evaluations were
    keyed by the rule they counted by (under the rule as asked for, '' for the defaults)."""
    e = model_evaluations.c
    for key in [scored.key] + ([scored.asked] if scored.asked != scored.key else []):
        row = conn.execute(
            select(model_evaluations).where(
                e.model_version_id == scored.version.id,
                e.dataset_version_id == scored.dataset.id,
                e.label == scored.label,
                e.positive == key["positive"],
                e.average == key["average"],
            )
        ).first()
        if row is not None:
            version = scored.version
            return _evaluation(version.name, version.version, scored.dataset.ref, row._mapping)
    return None


def _evaluation(model: str, version: int, dataset: str, row: Any) -> Evaluation:
    stored = dict(row["metrics"])
    return Evaluation(
        id=row["id"],
        model=model,
        version=version,
        model_version_id=row["model_version_id"],
        dataset=dataset,
        dataset_version_id=row["dataset_version_id"],
        label=row["label"],
        metrics={k: float(v) for k, v in stored.items() if not isinstance(v, str)},
        rows=int(row["rows"]),
        created_at=row["created_at"],
        positive=row["positive"] or None,
        average=row["average"] or None,
        not_computed={k: v for k, v in stored.items() if isinstance(v, str)},
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


def _metrics(scored: _Scored, predicted: Any) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics measured, and why each one that is missing is."""
    import numpy as np

    y = scored.truth.to_numpy()
    if scored.rule is None:
        try:
            measured = stats.regression_metrics(y, predicted)
        except ValueError:
            raise InvalidInput(
                "the label is numeric (a regression) but the model's predictions are not numbers"
            ) from None
        proba = None
    else:
        pred = np.asarray(predicted)
        if y.dtype.kind in "biu" and pred.dtype.kind == "f":
            pred = pred.round().astype(y.dtype)  # a classifier that returns 0.0/1.0
        proba, columns = _probabilities(scored.model, scored.features)
        rule = scored.rule
        try:
            measured = stats.classification_metrics(
                y,
                pred,
                proba,
                positive=rule.positive,
                average=rule.average,
                labels=columns if proba is not None else rule.classes,
            )
        except ValueError as exc:
            raise InvalidInput(f"cannot score label {scored.label!r}: {exc}") from None
    metrics = {k: v for k, v in measured.items() if v is not None}
    reasons = {k: stats.undefined(k) for k, v in measured.items() if v is None}
    if scored.rule is not None and proba is None:
        reasons["roc_auc"] = f"{stats.NO_SCORE}: the model has no predict_proba"
    return metrics, reasons


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
