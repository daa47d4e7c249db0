"""Signals: the values a monitor run computes from its window and the reference profile.

``data_drift`` (per feature, and the drifted share that makes the dataset-level verdict),
``data_quality`` (null, type-error and out-of-bounds rates), ``prediction_drift`` (the model's
answers in the window against its answers on the reference) and ``model_performance`` (from
delayed labels joined to the answers on the request's correlation id). Each value is a dict of
signal, feature (``*`` for a dataset-level value), metric, value, threshold, outcome and
details; a value that cannot be computed says why in ``details["reason"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput, NotFound
from cauce.monitoring import drift
from cauce.monitoring.drift import BREACHED, NOT_COMPUTED, PASSED, FeatureValue
from cauce.monitoring.profiles import CategoricalProfile, Profile, profile_current
from cauce.monitoring.specs import ModelPerformance, MonitorSpec
from cauce.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Window:
    """The current window: the model's inputs, its answers (endpoint targets) and the bounds."""

    inputs: pd.DataFrame
    outputs: pd.DataFrame | None
    start: int | None
    end: int | None


def _value(signal: str, v: FeatureValue) -> dict[str, Any]:
    return {
        "signal": signal,
        "feature": v.name,
        "metric": v.metric,
        "value": drift.finite(v.value),
        "threshold": v.threshold,
        "outcome": v.outcome,
        "details": v.details,
    }


def compute(
    ws: Workspace, spec: MonitorSpec, profile: Profile, window: Window
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every value of every signal, and the breaches among them that make an alert."""
    values: list[dict[str, Any]] = []
    breaches: list[dict[str, Any]] = []
    current = profile_current(profile, window.inputs)
    for signal in spec.signals:
        body = signal.body
        if signal.name == "data_drift":
            features = [f for f in profile.columns if f not in body.exclude]
            report = drift.data_drift(
                profile,
                current,
                numerical=body.numerical,
                categorical=body.categorical,
                threshold=body.threshold,
                drift_share=body.drift_share,
                thresholds=body.features,
                features=features,
                rows=len(window.inputs),
            )
            feature_values = [_value("data_drift", f) for f in report.features]
            share = {
                "signal": "data_drift",
                "feature": "*",
                "metric": "drifted_share",
                "value": report.drifted_share,
                "threshold": body.drift_share,
                "outcome": NOT_COMPUTED
                if report.dataset_drift is None
                else (BREACHED if report.dataset_drift else PASSED),
                "details": {"drifted": report.drifted}
                if report.drifted_share is not None
                else {"reason": "no feature could be computed"},
            }
            values += [*feature_values, share]
            if share["outcome"] == BREACHED:
                breaches += [share, *(v for v in feature_values if v["outcome"] == BREACHED)]
        elif signal.name == "data_quality":
            features = [f for f in profile.columns if f not in body.exclude]
            found = [
                _value("data_quality", v)
                for v in drift.data_quality(
                    profile, current, body.limits(), features=features, rows=len(window.inputs)
                )
            ]
            values += found
            breaches += [v for v in found if v["outcome"] == BREACHED]
        elif signal.name == "prediction_drift":
            found = _prediction_drift(profile, window, body.metric, body.threshold)
            values += found
            breaches += [v for v in found if v["outcome"] == BREACHED]
        else:
            found = [_performance(ws, spec, profile, body, window)]
            values += found
            breaches += [v for v in found if v["outcome"] == BREACHED]
    return values, breaches


def _prediction_drift(
    profile: Profile, window: Window, metric: str, threshold: float | None
) -> list[dict[str, Any]]:
    """Each answer column against the model's answers on the reference. A metric that does not
    apply to a column's kind (``ks`` on class labels) gives way to Jensen-Shannon with its own
    default threshold; the stored value names the metric used."""
    outputs = window.outputs
    if not profile.predictions:
        return [
            not_computed(
                "prediction_drift", "prediction", metric, "the reference has no predictions"
            )
        ]
    reference = Profile(rows=0, columns=profile.predictions, bins=profile.bins)
    if outputs is None or outputs.empty:
        return [
            not_computed("prediction_drift", name, metric, "no predictions in the window")
            for name in reference.columns
        ]
    out = []
    for name, ref in reference.columns.items():
        if name not in outputs.columns:  # said for each column, also when others are there
            reason = "the collected answers have no such column"
            out.append(not_computed("prediction_drift", name, metric, reason))
            continue
        applies = drift.NUMERICAL_METRICS if ref.kind == "numerical" else drift.CATEGORICAL_METRICS
        used = metric if metric in applies else "jensen_shannon"
        report = drift.data_drift(
            reference,
            outputs[[name]],
            numerical=used if ref.kind == "numerical" else "normalized_wasserstein",
            categorical=used if ref.kind == "categorical" else "jensen_shannon",
            threshold=threshold if used == metric else None,
            features=[name],
        )
        out += [_value("prediction_drift", f) for f in report.features]
    return out


def not_computed(signal: str, feature: str, metric: str, reason: str) -> dict[str, Any]:
    return {
        "signal": signal,
        "feature": feature,
        "metric": metric,
        "value": None,
        "threshold": None,
        "outcome": NOT_COMPUTED,
        "details": {"reason": reason},
    }


def _performance(
    ws: Workspace, spec: MonitorSpec, profile: Profile, body: ModelPerformance, window: Window
) -> dict[str, Any]:
    """A performance metric over the window's predictions whose labels have arrived."""
    from cauce import stats
    from cauce.data.assets import load

    threshold = body.min if body.min is not None else body.max
    outputs = window.outputs
    if outputs is None or outputs.empty:
        result = not_computed("model_performance", "*", body.metric, "no predictions in the window")
        return {**result, "threshold": threshold}
    try:
        labels = load(body.labels.dataset, workspace=ws)
    except NotFound:
        result = not_computed(
            "model_performance",
            "*",
            body.metric,
            f"no labels yet: dataset {body.labels.dataset} does not exist",
        )
        return {
            **result,
            "threshold": threshold,
            "details": {**result["details"], "predictions": len(outputs)},
        }
    for column, where in ((body.labels.join_on, "labels"), (body.labels.label, "labels")):
        if column not in labels.columns:
            raise InvalidInput(
                f"labels dataset {body.labels.dataset} has no column {column!r}",
                details={"field": f"signals.model_performance.labels.{where}"},
            )
    for answer, where in ((body.prediction, "prediction"), (body.score, "score")):
        if answer is not None and answer not in outputs.columns:
            raise InvalidInput(
                f"the collected answers have no column {answer!r}",
                details={"field": f"signals.model_performance.{where}"},
            )
    # Labels per request, or per row of a request when they carry the collector's ``row``.
    on = [body.labels.join_on] + (["row"] if "row" in labels.columns else [])
    keys = labels[[*on, body.labels.label]].drop_duplicates(on)
    joined = outputs.merge(
        keys, left_on=["correlation_id", *on[1:]], right_on=on, how="inner"
    ).dropna(subset=[body.labels.label, body.prediction])
    y_true = joined[body.labels.label].to_numpy()
    y_pred = joined[body.prediction].to_numpy()
    details: dict[str, Any] = {"predictions": len(outputs), "labelled": len(joined)}
    # Precision, recall, F1 and ROC AUC count by a positive class and an average, decided from
    # the model's classes and reported with the value.
    counted = body.metric in stats.CLASSIFICATION_METRICS and body.metric != "accuracy"
    known = _known_classes(ws, spec, profile, body.labels.label) if counted else None
    rule = stats.Scoring("binary")
    if counted:
        try:
            rule = stats.scoring(
                y_true, y_pred, positive=body.positive, average=body.average, labels=known
            )
        except stats.RuleError as exc:
            raise InvalidInput(
                f"model_performance {body.metric} on labels {body.labels.dataset}: {exc}",
                details={"field": f"signals.model_performance.{exc.field}"},
            ) from None
        details.update({"positive": rule.positive} if rule.average == "binary" else {})
        details["average"] = rule.average

    def missing(reason: str) -> dict[str, Any]:
        result = not_computed("model_performance", "*", body.metric, reason)
        return {**result, "threshold": threshold, "details": {**result["details"], **details}}

    if body.metric == "roc_auc" and body.score is None:
        return missing(f"{stats.NO_SCORE}: set score to the answer column that holds it")
    if len(joined) < body.min_labels:
        return missing(
            f"{len(joined)} of {len(outputs)} predictions in the window have a label, "
            f"fewer than {body.min_labels}"
        )
    fixed = {"positive": rule.positive, "average": rule.average, "labels": known}
    try:
        if body.metric in stats.REGRESSION_METRICS:
            value = stats.regression_metrics(y_true, y_pred)[body.metric]
        elif body.metric == "accuracy":
            value = stats.accuracy(y_true, y_pred)
        elif body.metric == "roc_auc":
            assert body.score is not None
            value = stats.roc_auc(y_true, joined[body.score].to_numpy(), **fixed)
        else:
            value = getattr(stats, body.metric)(y_true, y_pred, **fixed)
    except ValueError as exc:
        raise InvalidInput(
            f"model_performance {body.metric} on labels {body.labels.dataset}: {exc}",
            details={"field": "signals.model_performance"},
        ) from None
    if value is None:
        return missing(stats.undefined(body.metric))
    low = body.min is not None and value < body.min
    high = body.max is not None and value > body.max
    return {
        "signal": "model_performance",
        "feature": "*",
        "metric": body.metric,
        "value": drift.finite(float(value)),
        "threshold": threshold,
        "outcome": BREACHED if low or high else PASSED,
        "details": details,
    }


# Classes of model versions read once per process: a version never changes.
_MODEL_CLASSES: dict[str, list[Any] | None] = {}


def _known_classes(
    ws: Workspace, spec: MonitorSpec, profile: Profile, label: str
) -> list[Any] | None:
    """The classes of the monitored model: the reference model's ``classes_`` (a scikit-learn
    classifier), else the values of the label column in the reference profile; None when
    neither knows them. Never the classes a window happens to hold."""
    from cauce import stats

    if spec.reference is not None and spec.reference.model is not None:
        from cauce.registry.models import load, resolve

        version = resolve(spec.reference.model, workspace=ws)
        if version.id not in _MODEL_CLASSES:
            native = load(version.uri, workspace=ws).unwrap()
            _MODEL_CLASSES[version.id] = stats.known_classes(getattr(native, "classes_", None))
        if _MODEL_CLASSES[version.id] is not None:
            return _MODEL_CLASSES[version.id]
    column = profile.columns.get(label)
    if isinstance(column, CategoricalProfile) and column.frequencies:
        return stats.known_classes(_typed_categories(list(column.frequencies)))
    return None


def _typed_categories(names: list[str]) -> list[Any]:
    """A profile's category texts as the values they stand for: booleans, numbers or text."""
    if set(names) <= {"True", "False"}:
        return [name == "True" for name in names]
    try:
        numbers = [float(name) for name in names]
    except ValueError:
        return names
    return [int(x) if x.is_integer() else x for x in numbers]
