"""``kind: Monitor``: what to watch, against what, how often, and what to do on an alert.

Example::

    kind: Monitor
    name: churn-drift
    target: {endpoint: churn}                  # or {dataset: NAME}
    reference: {model: models:/churn@champion} # its training data; or {dataset: NAME[@V]}
    schedule: "*/10 * * * *"
    window: {size: 1h, offset: 0s}
    signals:
      - data_drift: {numerical: normalized_wasserstein, categorical: jensen_shannon,
                     threshold: 0.1, drift_share: 0.3, features: {monthly_charges: 0.05}}
      - prediction_drift: {metric: jensen_shannon, threshold: 0.1}
      - data_quality: {null_rate: 0.0, out_of_bounds_rate: 0.01}
      - model_performance: {metric: roc_auc, min: 0.80,
                            labels: {dataset: churn-labels, join_on: request_id, label: churned}}
    on_alert:
      - trigger: {pipeline: pipelines/training.py:training}
      - webhook: {url: "http://127.0.0.1:9000/hooks/cauce"}
    cooldown: 1h
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from cauce.monitoring.drift import CATEGORICAL_METRICS, NUMERICAL_METRICS
from cauce.stats import Average, Positive, check_rule
from cauce.validation import Duration, check_cron, check_name, duration_ms

DriftMetric = Literal[
    "normalized_wasserstein", "jensen_shannon", "psi", "ks", "chi_squared", "chebyshev"
]
PerformanceMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse", "r2"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OneOf(_Spec):
    """A choice written as a one-key mapping: ``- data_drift: {...}``, ``- webhook: {...}``."""

    @model_validator(mode="after")
    def _one(self) -> _OneOf:
        if sum(v is not None for v in self.__dict__.values()) != 1:
            what = type(self).__name__.lower()
            raise ValueError(f"each {what} is one of {', '.join(type(self).model_fields)}")
        return self

    @property
    def name(self) -> str:
        """The key given, e.g. ``data_drift`` or ``webhook``."""
        return next(k for k, v in self.__dict__.items() if v is not None)

    @property
    def body(self) -> Any:
        """The settings under the key."""
        return getattr(self, self.name)


class Target(_Spec):
    """Production data: an endpoint's collected requests, or a dataset's newest rows."""

    endpoint: str | None = None
    deployments: list[str] | None = None  # default: every deployment of the endpoint
    include_mirror: bool = False
    dataset: str | None = None
    timestamp: str | None = None  # a dataset's time column for the window; default: newest version

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.endpoint is None) == (self.dataset is None):
            raise ValueError("give exactly one of endpoint or dataset")
        if self.dataset is not None and (self.deployments or self.include_mirror):
            raise ValueError("deployments and include_mirror apply to an endpoint target")
        return self


class Reference(_Spec):
    """What normal looks like: a dataset version, or a model version's training data."""

    model: str | None = None
    dataset: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Reference:
        if (self.model is None) == (self.dataset is None):
            raise ValueError("give exactly one of model or dataset")
        if self.model is not None and not self.model.startswith("models:/"):
            raise ValueError(f"model must be a models:/ URI, not {self.model!r}")
        return self


class Window(_Spec):
    """The current window: ``end - size < timestamp <= end`` with ``end = now - offset``."""

    size: Duration = 3_600_000
    offset: Duration = 0

    @field_validator("size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("size must be positive")
        return value


class DataDrift(_Spec):
    """Per-feature distribution drift and the dataset-level drifted share."""

    numerical: DriftMetric = "normalized_wasserstein"
    categorical: DriftMetric = "jensen_shannon"
    threshold: float | None = Field(default=None, ge=0)
    drift_share: float = Field(default=0.3, ge=0, le=1)
    features: dict[str, float] = Field(default_factory=dict)  # per-feature thresholds
    exclude: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _kinds(self) -> DataDrift:
        if self.numerical not in NUMERICAL_METRICS:
            raise ValueError(f"numerical: {self.numerical} applies to categorical columns only")
        if self.categorical not in CATEGORICAL_METRICS:
            raise ValueError(f"categorical: {self.categorical} applies to numerical columns only")
        return self


class PredictionDrift(_Spec):
    """Drift of the model's answers against its answers on the reference."""

    metric: DriftMetric = "jensen_shannon"
    threshold: float | None = Field(default=None, ge=0)


class DataQuality(_Spec):
    """Maximum rates; a rate above its maximum breaches. Unset rates are not computed."""

    null_rate: float | None = Field(default=None, ge=0, le=1)
    type_error_rate: float | None = Field(default=None, ge=0, le=1)
    out_of_bounds_rate: float | None = Field(default=None, ge=0, le=1)
    exclude: list[str] = Field(default_factory=list)

    def limits(self) -> dict[str, float]:
        """The rates to compute and their maximums."""
        names = ("null_rate", "type_error_rate", "out_of_bounds_rate")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    @model_validator(mode="after")
    def _some(self) -> DataQuality:
        if not self.limits():
            raise ValueError("give at least one of null_rate, type_error_rate, out_of_bounds_rate")
        return self


class Labels(_Spec):
    """Where delayed ground truth arrives: a dataset joined to predictions on an id."""

    dataset: str
    join_on: str = "correlation_id"  # the labels' column holding the request id
    label: str = "label"


class ModelPerformance(_Spec):
    """A performance metric from delayed labels, with a minimum or a maximum."""

    metric: PerformanceMetric
    min: float | None = None
    max: float | None = None
    labels: Labels
    prediction: str = "prediction"  # the collected output column with the predicted value
    score: str | None = None  # the positive class's score; roc_auc is not computed without it
    positive: Positive = None  # default: from the model's classes (cauce.stats.scoring)
    average: Average | None = None  # default: binary for two known classes, macro for more
    min_labels: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _bound(self) -> ModelPerformance:
        if self.min is None and self.max is None:
            raise ValueError("give min or max")
        check_rule(self.positive, self.average)
        return self


class Signal(_OneOf):
    """One signal: exactly one of the keys."""

    data_drift: DataDrift | None = None
    prediction_drift: PredictionDrift | None = None
    data_quality: DataQuality | None = None
    model_performance: ModelPerformance | None = None


class _Retried(_Spec):
    """How often a failed attempt is tried again, and after how long (doubled each time)."""

    retries: int = Field(default=0, ge=0, le=10)
    backoff: Duration = 200


class TriggerAction(_Retried):
    """Run a pipeline (retraining); the alert's id and reason are passed if it takes them."""

    pipeline: str = Field(pattern=r"^.+\.py:[A-Za-z_]\w*$")
    params: dict[str, Any] = Field(default_factory=dict)
    executor: Literal["local", "process", "ray"] = "local"


class WebhookAction(_Retried):
    """POST the alert as JSON; retried with backoff on failures and 5xx answers."""

    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    retries: int = Field(default=3, ge=0, le=10)
    timeout: Duration = 5_000


class LogAction(_Spec):
    """Write the alert to the log."""

    level: Literal["info", "warning", "error"] = "warning"


class Action(_OneOf):
    """One action on an alert: exactly one of the keys."""

    trigger: TriggerAction | None = None
    webhook: WebhookAction | None = None
    log: LogAction | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_log(cls, value: Any) -> Any:
        # A bare ``- log:`` in YAML; a stored spec has the other kinds as None beside it.
        bare = (
            isinstance(value, dict)
            and "log" in value
            and value["log"] is None
            and all(value.get(k) is None for k in ("trigger", "webhook"))
        )
        return {**value, "log": {}} if bare else value


def from_store(model: type[BaseModel], document: dict[str, Any]) -> dict[str, Any]:
    """A stored ``model`` document (``model_dump(mode="json")``) ready to validate again.

    Durations are stored as milliseconds while a bare number in a spec means seconds: every
    field of type ``Duration``, at any depth (nested specs, lists, optional fields), gets its
    unit back (``"3600000ms"``), found by its type rather than by its name.
    """
    out = dict(document)
    for name, info in model.model_fields.items():
        if out.get(name) is not None:
            out[name] = _from_store(info.annotation, info.metadata, out[name])
    return out


def _from_store(annotation: Any, metadata: list[Any], value: Any) -> Any:
    if any(isinstance(m, BeforeValidator) and m.func is duration_ms for m in metadata):
        return f"{value}ms" if type(value) is int else value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _from_store(args[0], list(args[1:]), value)
    if origin in (Union, UnionType):
        for arm in args:
            restored = _from_store(arm, [], value)
            if restored is not value:
                return restored
        return value
    if origin is list and isinstance(value, list):
        return [_from_store(args[0], [], v) for v in value]
    if origin is dict and isinstance(value, dict):
        return {k: _from_store(args[1], [], v) for k, v in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return from_store(annotation, value) if isinstance(value, dict) else value
    return value


class MonitorSpec(_Spec):
    """``kind: Monitor``."""

    kind: Literal["Monitor"] = "Monitor"
    name: str
    target: Target
    reference: Reference
    schedule: str | None = None
    window: Window = Field(default_factory=Window)
    signals: list[Signal] = Field(min_length=1)
    on_alert: list[Action] = Field(default_factory=list)
    cooldown: Duration = 3_600_000
    bins: int = Field(default=20, ge=2, le=200)
    min_rows: int = Field(default=1, ge=1)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "monitor name")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value)

    @model_validator(mode="after")
    def _signals(self) -> MonitorSpec:
        names = [s.name for s in self.signals]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"signal {repeated[0]} is given twice")
        needs_endpoint = {"prediction_drift", "model_performance"} & set(names)
        if needs_endpoint and self.target.endpoint is None:
            raise ValueError(f"{sorted(needs_endpoint)[0]} needs an endpoint target")
        if "prediction_drift" in names and self.reference.model is None:
            raise ValueError("prediction_drift needs a model reference")
        return self
