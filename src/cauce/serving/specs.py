"""The serving specs: ``kind: Endpoint``, ``kind: Deployment`` and ``kind: Rollout``.

Example::

    kind: Endpoint
    name: churn
    traffic: {blue: 90, green: 10}
    mirror: {green: 20}
    ---
    kind: Deployment
    endpoint: churn
    name: green
    model: models:/churn@challenger
    workers: 2
    batching: {max_batch_size: 32, max_latency_ms: 5}
    collect: {requests: true, responses: true, sampling: 1.0}
    ---
    kind: Rollout
    endpoint: churn
    candidate: green
    steps: [{weight: 10, pause: 60s}, {weight: 50, pause: 60s}, {weight: 100}]
    analysis:
      interval: 10s
      failure_limit: 2
      metrics:
        - {name: error_rate, max: 0.01}
        - {name: latency_p99_ms, max: 50}
        - {name: prediction_drift, max: 0.1}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cauce.errors import InvalidInput
from cauce.validation import Duration, check_alias, check_name

Percent = Annotated[int, Field(ge=0, le=100)]


def _percentages(value: dict[str, int], what: str) -> dict[str, int]:
    for name in value:
        check_name(name, f"{what} deployment name")
    return value


class CacheSpec(BaseModel):
    """The exact-match cache of GenAI answers: the same request body, the same answer."""

    model_config = ConfigDict(extra="forbid")
    ttl: Duration = 3_600_000
    max_entries: int = Field(default=10_000, ge=1, le=10_000_000)


class EndpointSpec(BaseModel):
    """A stable scoring address in front of one or more deployments."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["Endpoint"] = "Endpoint"
    name: str
    description: str = ""
    traffic: dict[str, Percent] = Field(default_factory=dict)
    mirror: dict[str, Percent] = Field(default_factory=dict)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    timeout: Duration = 30_000  # per scoring request, router to deployment
    # api_key: GenAI requests need a key of this endpoint (``cauce endpoints keys create``).
    auth: Literal["none", "api_key"] = "none"
    cache: CacheSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "endpoint name")

    @field_validator("traffic")
    @classmethod
    def _traffic(cls, value: dict[str, int]) -> dict[str, int]:
        return check_traffic(_percentages(value, "traffic"))

    @field_validator("mirror")
    @classmethod
    def _mirror(cls, value: dict[str, int]) -> dict[str, int]:
        return check_mirror(_percentages(value, "mirror"))

    @model_validator(mode="after")
    def _mirror_not_live(self) -> EndpointSpec:
        check_mirror_not_live(self.traffic, self.mirror)
        return self


def check_traffic(traffic: dict[str, int]) -> dict[str, int]:
    """Weights sum to 100, or are all 0 (the endpoint takes no live traffic)."""
    total = sum(traffic.values())
    if total not in (0, 100):
        shown = ", ".join(f"{k}={v}" for k, v in traffic.items())
        raise ValueError(f"traffic must sum to 100 (or 0 to disable); {shown} sums to {total}")
    return traffic


def check_mirror(mirror: dict[str, int]) -> dict[str, int]:
    """At most one deployment gets a shadow copy of live requests."""
    if len([v for v in mirror.values() if v > 0]) > 1:
        raise ValueError("mirror traffic can go to one deployment only")
    return mirror


def check_mirror_not_live(traffic: dict[str, int], mirror: dict[str, int]) -> None:
    """A mirrored deployment must not also take live traffic: it would score requests twice."""
    for name, percent in mirror.items():
        if percent > 0 and traffic.get(name, 0) > 0:
            raise ValueError(
                f"deployment {name!r} takes live traffic ({traffic[name]}%) and cannot also "
                "be mirrored; mirror a deployment with 0% traffic"
            )


class BatchingSpec(BaseModel):
    """Adaptive batching: requests wait up to ``max_latency_ms`` to be scored together."""

    model_config = ConfigDict(extra="forbid")
    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_latency_ms: float = Field(default=5.0, ge=0, le=10_000)


class CollectSpec(BaseModel):
    """What the data collector records for a deployment."""

    model_config = ConfigDict(extra="forbid")
    requests: bool = True
    responses: bool = True
    sampling: float = Field(default=1.0, ge=0.0, le=1.0)
    format: Literal["parquet", "jsonl"] = "parquet"
    # Fields replaced by "[redacted]" before a record is written; for anything finer, a
    # "module:function" that receives and returns each record (a dict).
    redact: list[str] = Field(default_factory=list)
    redactor: str | None = Field(default=None, pattern=r"^[\w.]+:[A-Za-z_]\w*$")


class DeploymentSpec(BaseModel):
    """What worker processes serve behind an endpoint: a registered model version (a classic
    model, or an LLM), a flow version, a prompt version sent through a connection, or a
    connection alone (proxied). The last three, and LLMs, answer OpenAI's API."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["Deployment"] = "Deployment"
    endpoint: str
    name: str
    model: str | None = Field(default=None, pattern=r"^models:/.+")  # by number or alias
    flow: str | None = Field(default=None, pattern=r"^flows:/.+")
    prompt: str | None = Field(default=None, pattern=r"^prompts:/.+")
    connection: str | None = None
    # The model id sent through the connection; default: the prompt's, else the connection's.
    upstream_model: str | None = None
    # A flow's searches read these index versions instead of the current ones (a canary of a
    # new index version; a rollout's promotion makes them current).
    indexes: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    # Tried in order when this deployment answers 429 or 5xx or times out before its first
    # byte: other deployments of the endpoint, or connections (``connections:/backup``).
    fallbacks: list[str] = Field(default_factory=list)
    # Input and output filters of GenAI answers (cauce.genai.safety.filters.SafetySpec).
    safety: dict[str, Any] | None = None
    # A connection or a prompt may run in the router's process: no hop to a worker.
    runs_in: Literal["workers", "router"] = "workers"
    workers: int = Field(default=1, ge=1, le=64)
    batching: BatchingSpec | None = None
    collect: CollectSpec | None = None

    @model_validator(mode="after")
    def _one_target(self) -> DeploymentSpec:
        given = [f for f in ("model", "flow", "prompt") if getattr(self, f) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of model, flow or prompt, not {' and '.join(given)}")
        if not given and self.connection is None:
            raise ValueError("give what the deployment serves: model, flow, prompt or connection")
        if self.prompt is not None and self.connection is None:
            raise ValueError("a prompt is served through a connection: give connection")
        if given and given[0] != "prompt" and self.connection is not None:
            raise ValueError(f"connection goes with a prompt, or alone; not with {given[0]}")
        if self.upstream_model is not None and self.connection is None:
            raise ValueError("upstream_model is the model sent through a connection")
        if self.indexes and self.flow is None:
            raise ValueError("indexes pins the index versions a flow searches: give flow")
        if self.runs_in == "router" and (self.model is not None or self.flow is not None):
            raise ValueError(
                "runs_in: router is for a connection or a prompt; models and flows compute, "
                "they run in workers"
            )
        return self

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.startswith("connections:/"):
                check_name(item.removeprefix("connections:/"), "fallback connection name")
            else:
                check_name(item, "fallback deployment name")
        return value

    @property
    def target_kind(self) -> str:
        """model, flow, prompt or connection."""
        if self.model is not None:
            return "model"
        if self.flow is not None:
            return "flow"
        return "prompt" if self.prompt is not None else "connection"

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_name(value, "endpoint name")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "deployment name")


class RolloutStep(BaseModel):
    """Give the candidate ``weight`` percent of live traffic, then wait ``pause``."""

    model_config = ConfigDict(extra="forbid")
    weight: Percent
    pause: Duration | None = None  # None after the last step; elsewhere: wait for a human


class AnalysisMetric(BaseModel):
    """A bound on one measurement of the candidate over each analysis interval.

    Built in: ``error_rate``, ``latency_p99_ms``, ``latency_p50_ms``, ``prediction_drift``
    (Jensen-Shannon distance between the candidate's predictions since the stage started and
    the stable deployment's since the rollout started), and for GenAI deployments, over the
    collector's ``genai`` records: ``cost_per_request``, ``tokens_per_request``,
    ``ttft_p50_ms``, ``ttft_p99_ms``, ``safety_flag_rate``, ``block_rate``. ``evaluator``
    makes the metric the mean score of an evaluator (``groundedness``, ``relevance``, any of
    :mod:`cauce.genai.evals`) over a sample of the candidate's answers. Any other name needs
    ``query``: SQL over the collector's records of the interval (tables ``candidate`` and
    ``stable``) that returns one number.
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    max: float | None = None
    min: float | None = None
    query: str | None = None
    evaluator: str | dict[str, Any] | None = None

    @model_validator(mode="after")
    def _bound(self) -> AnalysisMetric:
        if self.max is None and self.min is None:
            raise ValueError(f"metric {self.name!r} needs a max or a min")
        if self.name not in BUILTIN_METRICS and self.query is None and self.evaluator is None:
            raise ValueError(
                f"metric {self.name!r} is not built in ({', '.join(BUILTIN_METRICS)}); "
                "give a query over the collector's records, or an evaluator"
            )
        if self.query is not None and self.evaluator is not None:
            raise ValueError(f"metric {self.name!r}: give a query or an evaluator, not both")
        return self


GENAI_METRICS = (
    "cost_per_request",
    "tokens_per_request",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "safety_flag_rate",
    "block_rate",
)
BUILTIN_METRICS = (
    "error_rate",
    "latency_p99_ms",
    "latency_p50_ms",
    "prediction_drift",
    *GENAI_METRICS,
)


class AnalysisSpec(BaseModel):
    """How the candidate is judged while the rollout runs."""

    model_config = ConfigDict(extra="forbid")
    interval: Duration = 10_000
    failure_limit: int = Field(default=1, ge=1)
    # Fewer candidate requests than this in an interval: inconclusive, not a pass.
    min_requests: int = Field(default=20, ge=1)
    # Inconclusive intervals in a row before the rollout pauses for a human.
    inconclusive_limit: int = Field(default=3, ge=1)
    # prediction_drift counts once each side has collected this many predictions (the candidate
    # since the stage started, the stable deployment since the rollout did): fewer are noise.
    min_predictions: int = Field(default=100, ge=1)
    # Evaluator metrics score this share of the candidate's answers of the interval, and
    # count once at least min_samples are scored; judges are asked through ``judge``.
    sample: float = Field(default=1.0, gt=0, le=1)
    min_samples: int = Field(default=20, ge=1)
    judge: str | None = None
    metrics: list[AnalysisMetric] = Field(default_factory=list)


class MirrorStage(BaseModel):
    """Blue-green pre-stage: shadow ``percent`` of live requests to the candidate first."""

    model_config = ConfigDict(extra="forbid")
    percent: Percent = 100
    duration: Duration


class RolloutSpec(BaseModel):
    """A progressive change of traffic from the stable deployment to a candidate."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["Rollout"] = "Rollout"
    endpoint: str
    candidate: str
    stable: str | None = None  # default: the deployment with the most traffic
    steps: list[RolloutStep] = Field(min_length=1)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    mirror: MirrorStage | None = None
    # On promotion this alias of the candidate's model moves to the candidate's version.
    alias: str | None = "champion"

    @field_validator("endpoint", "candidate", "stable")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "name")

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        # Refused here, not when the rollout is promoted: by then the alias could only fail.
        try:
            return None if value is None else check_alias(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[RolloutStep]) -> list[RolloutStep]:
        weights = [s.weight for s in steps]
        if weights != sorted(weights):
            raise ValueError(f"step weights must not decrease; got {weights}")
        if weights[-1] != 100:
            raise ValueError(f"the last step must give the candidate 100%; got {weights[-1]}")
        return steps

    @model_validator(mode="after")
    def _distinct(self) -> RolloutSpec:
        if self.stable is not None and self.stable == self.candidate:
            raise ValueError("the candidate and the stable deployment must differ")
        return self
