"""Tracking entities, shaped as MLflow shapes them so that habits carry over."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class Metric:
    """One logged value of a metric."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class RunInfo:
    """What a run is: identity, status, times, and where its code and environment came from."""

    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    user_id: str
    lifecycle_stage: str
    parent_run_id: str | None = None
    source_commit: str | None = None
    source_dirty: bool | None = None
    entry_point: str | None = None
    python_version: str | None = None
    packages_hash: str | None = None
    error: str | None = None

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id

    @property
    def artifact_uri(self) -> str:
        """The URI prefix of the run's artifacts."""
        return f"runs:/{self.run_id}"


@dataclass(frozen=True)
class RunData:
    """What a run logged: the latest value of each metric, params and tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInput:
    """A dataset version a run used, and in which context (training, evaluation, …)."""

    dataset: str
    version: int
    dataset_version_id: str
    context: str
    content_hash: str
    row_count: int


@dataclass(frozen=True)
class DatasetReference:
    """Data a run read that Cauce does not hold, as the client that logged the run described
    it (an MLflow dataset): its name, a digest of it, where it lives, its schema and profile
    as the client wrote them (JSON text), and the context it was read in."""

    name: str
    digest: str
    context: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class RunInputs:
    """The datasets a run used: versions Cauce holds, and data described by reference."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    dataset_references: list[DatasetReference] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """A tracked execution: ``info``, ``data`` and ``inputs``."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "info": asdict(self.info),
            "data": asdict(self.data),
            "inputs": asdict(self.inputs),
        }


RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
