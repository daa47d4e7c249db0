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

A GenAI endpoint's monitor reads the ``genai`` records its collector writes::

    kind: Monitor
    name: support-genai
    target: {endpoint: support}
    reference: {window: {size: 7d, offset: 1d}}  # or {dataset: NAME[@V]} with a query column
    signals:
      - genai_errors: {error_rate: 0.02}
      - genai_latency: {ttft_p95_ms: 800}
      - genai_quality: {evaluators: [groundedness_proxy], min: {groundedness_proxy: 0.6},
                        sample: 0.2}
      - query_drift: {method: projection, components: 5}
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from cauce.config import duration_ms
from cauce.monitoring.drift import CATEGORICAL_METRICS, NUMERICAL_METRICS
from cauce.stats import Average, Positive, check_rule
from cauce.validation import Duration, check_cron, check_name

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


class Reference(_Spec):
    """What normal looks like: a dataset version, a model version's training data, or (GenAI
    signals) an earlier window of the same target."""

    model: str | None = None
    dataset: str | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _one(self) -> Reference:
        if sum(v is not None for v in (self.model, self.dataset, self.window)) != 1:
            raise ValueError("give exactly one of model, dataset or window")
        if self.model is not None and not self.model.startswith("models:/"):
            raise ValueError(f"model must be a models:/ URI, not {self.model!r}")
        return self


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


class _Maxima(_Spec):
    """A GenAI operational signal: each metric is computed and stored; one given a maximum is
    judged against it (above breaches), the others are ``measured``."""

    def limits(self) -> dict[str, float]:
        """The metrics given a maximum, and their maximums."""
        return {n: v for n in type(self).model_fields if (v := getattr(self, n)) is not None}


_Max = Annotated[float | None, Field(ge=0)]
_MaxRate = Annotated[float | None, Field(ge=0, le=1)]


class GenAITokens(_Maxima):
    """Tokens per request (means) and in the window (totals), as the upstream reported them."""

    input_tokens_per_request: _Max = None
    output_tokens_per_request: _Max = None
    input_tokens: _Max = None
    output_tokens: _Max = None
    total_tokens: _Max = None


class GenAICost(_Maxima):
    """Cost per priced request (mean) and in the window (total)."""

    cost_per_request: _Max = None
    cost: _Max = None


class GenAILatency(_Maxima):
    """Latency of answered requests and time to first token of answered streams, percentiles."""

    latency_p50_ms: _Max = None
    latency_p95_ms: _Max = None
    latency_p99_ms: _Max = None
    ttft_p50_ms: _Max = None
    ttft_p95_ms: _Max = None
    ttft_p99_ms: _Max = None


class GenAIErrors(_Maxima):
    """Requests answered with an error status; streams the client abandoned."""

    error_rate: _MaxRate = None
    abandon_rate: _MaxRate = None


class GenAIRefusals(_Maxima):
    """Chat requests declined: blocked, stopped by a content filter, or a refusal phrase."""

    refusal_rate: _MaxRate = None


class GenAISafety(_Maxima):
    """Requests a safety filter flagged, and requests it blocked (either direction)."""

    flag_rate: _MaxRate = None
    block_rate: _MaxRate = None


class References(_Spec):
    """Where reference answers arrive for live requests: a dataset joined on the request id."""

    dataset: str
    join_on: str = "correlation_id"
    column: str = "reference"


class GenAIQuality(_Spec):
    """Evaluator scores on a seeded sample of the window's answered chat requests; the mean of
    each is judged against its minimum."""

    evaluators: list[str | dict[str, Any]] = Field(min_length=1)
    min: dict[str, float] = Field(default_factory=dict)
    sample: float = Field(default=0.1, gt=0, le=1)
    seed: int = 0
    max_rows: int = Field(default=200, ge=1)
    min_samples: int = Field(default=1, ge=1)
    judge: str | None = None  # the connection of the judge model (judge evaluators)
    judge_model: str | None = None
    judge_params: dict[str, Any] = Field(default_factory=dict)
    references: References | None = None
    concurrency: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _evaluators(self) -> GenAIQuality:
        from cauce.errors import InvalidInput
        from cauce.genai.evals.runs import evaluator

        names = []
        for spec in self.evaluators:
            try:
                found = evaluator(spec)
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
            unread = sorted(set(found.inputs) - set(QUALITY_INPUTS))
            if unread:
                raise ValueError(
                    f"{found.name} reads {', '.join(unread)}, which GenAI records do not hold"
                )
            if "reference" in found.inputs and self.references is None:
                raise ValueError(f"{found.name} needs references: {{dataset: NAME}}")
            if found.judge is not None and self.judge is None:
                raise ValueError(f"{found.name} needs a judge: the connection of the judge model")
            names.append(found.name)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"evaluator {repeated[0]} is given twice")
        unknown = sorted(set(self.min) - set(names))
        if unknown:
            raise ValueError(f"min names {', '.join(unknown)}, which no evaluator computes")
        return self

    def names(self) -> list[str]:
        """The metric name of each evaluator, in order."""
        from cauce.genai.evals.runs import evaluator

        return [evaluator(e).name for e in self.evaluators]


# What a GenAI record offers an evaluator, by the evaluator's input name.
QUALITY_INPUTS = {"question": "query", "answer": "completion", "contexts": "contexts"}
QUALITY_INPUTS["reference"] = "reference"


class QueryDrift(_Spec):
    """Drift of the queries' embeddings (MiniLM) against the reference's: per principal
    component with a drift metric, or as a domain classifier's ROC AUC."""

    method: Literal["projection", "classifier", "both"] = "projection"
    components: int = Field(default=5, ge=1, le=50)
    # A p-value by default: windows of queries are small and their projections lumpy (templated
    # questions), where a distance's fixed threshold breaches on noise alone.
    metric: DriftMetric = "ks"
    threshold: float | None = Field(default=None, ge=0)
    drift_share: float = Field(default=0.3, ge=0, le=1)
    max_auc: float = Field(default=0.7, gt=0.5, le=1)
    column: str | None = None  # the reference dataset's query column
    max_rows: int = Field(default=2000, ge=10)
    seed: int = 0

    @model_validator(mode="after")
    def _numerical(self) -> QueryDrift:
        if self.metric not in NUMERICAL_METRICS:
            raise ValueError(f"metric: {self.metric} applies to categorical columns only")
        return self


CLASSIC_SIGNALS = ("data_drift", "prediction_drift", "data_quality", "model_performance")
GENAI_SIGNALS = (
    "genai_tokens",
    "genai_cost",
    "genai_latency",
    "genai_errors",
    "genai_refusals",
    "genai_safety",
    "genai_quality",
    "query_drift",
)


class Signal(_OneOf):
    """One signal: exactly one of the keys."""

    data_drift: DataDrift | None = None
    prediction_drift: PredictionDrift | None = None
    data_quality: DataQuality | None = None
    model_performance: ModelPerformance | None = None
    genai_tokens: GenAITokens | None = None
    genai_cost: GenAICost | None = None
    genai_latency: GenAILatency | None = None
    genai_errors: GenAIErrors | None = None
    genai_refusals: GenAIRefusals | None = None
    genai_safety: GenAISafety | None = None
    genai_quality: GenAIQuality | None = None
    query_drift: QueryDrift | None = None


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
    reference: Reference | None = None
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
        genai = [n for n in names if n in GENAI_SIGNALS]
        classic = [n for n in names if n in CLASSIC_SIGNALS]
        if genai and classic:
            raise ValueError(
                f"{classic[0]} and {genai[0]}: a monitor watches a model's inputs and answers "
                "or a GenAI endpoint's records, not both"
            )
        reference = self.reference
        if classic and (reference is None or reference.window is not None):
            raise ValueError(f"{classic[0]} needs a reference: {{model: URI}} or {{dataset: NAME}}")
        if genai and reference is not None and reference.model is not None:
            raise ValueError("GenAI signals take a reference {dataset: NAME} or {window: ...}")
        if reference is not None and reference.window is not None:
            if self.target.dataset is not None and self.target.timestamp is None:
                raise ValueError("a reference window needs target.timestamp on a dataset target")
            if reference.window.offset < self.window.offset + self.window.size:
                raise ValueError(
                    "the reference window overlaps the current one: its offset must be at least "
                    "window.offset + window.size"
                )
        if "query_drift" in names and reference is None:
            raise ValueError("query_drift needs a reference: {dataset: NAME} or {window: ...}")
        needs_endpoint = {"prediction_drift", "model_performance"} & set(names)
        if needs_endpoint and self.target.endpoint is None:
            raise ValueError(f"{sorted(needs_endpoint)[0]} needs an endpoint target")
        if "prediction_drift" in names and (reference is None or reference.model is None):
            raise ValueError("prediction_drift needs a model reference")
        return self

    @property
    def genai(self) -> bool:
        """Whether the monitor judges GenAI records (``genai_*`` and ``query_drift`` signals)."""
        return any(s.name in GENAI_SIGNALS for s in self.signals)
