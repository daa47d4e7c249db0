"""Schedules: run a pipeline on a cron expression, or when a dataset gets a new version.

Example spec::

    kind: Schedule
    name: nightly-training
    pipeline: pipelines/training.py:training
    cron: "0 2 * * *"            # or: trigger: {dataset: customers}
    params: {source: data/customers.csv}
    executor: local

Times are UTC. A cron schedule that was due while no agent ran fires once when an agent comes
back, not once per missed slot; a dataset trigger fires once for the newest version it has not
seen. Each firing is stored with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, func, select

from cauce.errors import NotFound
from cauce.operations import operation
from cauce.specs import Applied, save_spec
from cauce.store import now_ms
from cauce.store.schema import dataset_versions, datasets, schedule_firings, schedules
from cauce.validation import check_cron, check_name, next_cron_time
from cauce.workspace import Workspace, current


class DatasetTrigger(BaseModel):
    """Fire when this dataset gets a new version."""

    model_config = ConfigDict(extra="forbid")
    dataset: str


class ScheduleSpec(BaseModel):
    """``kind: Schedule``: a pipeline to run on a cron expression or on new data."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["Schedule"] = "Schedule"
    name: str
    pipeline: str = Field(pattern=r"^.+\.py:[A-Za-z_]\w*$")
    cron: str | None = None
    # Not "on:": YAML 1.1 reads a bare `on` key as the boolean True.
    trigger: DatasetTrigger | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    executor: Literal["local", "process", "ray"] = "local"
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "schedule name")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value)

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSpec:
        if (self.cron is None) == (self.trigger is None):
            raise ValueError("give exactly one of cron or trigger")
        return self


@dataclass(frozen=True)
class Schedule:
    """A stored schedule and where it stands."""

    name: str
    spec: dict[str, Any]
    enabled: bool
    next_run_at: int | None
    last_run_at: int | None
    last_seen_version: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


def newest_version(conn: Connection, dataset: str) -> int | None:
    """The newest version number of a dataset, or None."""
    number: int | None = conn.execute(
        select(func.max(dataset_versions.c.version))
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == dataset)
    ).scalar()
    return number


def save_schedule(conn: Connection, ws: Workspace, spec: ScheduleSpec) -> Applied:
    """Create or update a schedule in the caller's transaction; an identical spec changes
    nothing."""
    body = spec.model_dump(mode="json")
    now = now_ms()
    if spec.cron is not None:
        next_run, seen = next_cron_time(spec.cron, now), None
    else:
        assert spec.trigger is not None
        # Only versions registered after the trigger is applied fire it.
        next_run, seen = None, newest_version(conn, spec.trigger.dataset) or 0
    values = {"enabled": spec.enabled, "next_run_at": next_run, "last_seen_version": seen}
    return save_spec(conn, ws, schedules, "Schedule", body, values)


@operation("GET /schedules")
def list_schedules(*, workspace: Workspace | None = None) -> list[Schedule]:
    """Every schedule, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(select(schedules).order_by(schedules.c.name)).all()
    return [
        Schedule(r.name, r.spec, r.enabled, r.next_run_at, r.last_run_at, r.last_seen_version)
        for r in rows
    ]


@operation("GET /schedules/{name}/firings")
def firings(name: str, *, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """Every firing of a schedule, oldest first."""
    ws = workspace or current()
    with ws.store.read() as conn:
        schedule_id = conn.execute(select(schedules.c.id).where(schedules.c.name == name)).scalar()
        if schedule_id is None:
            raise NotFound(f"schedule {name!r} does not exist")
        rows = conn.execute(
            select(schedule_firings)
            .where(schedule_firings.c.schedule_id == schedule_id)
            .order_by(schedule_firings.c.at, schedule_firings.c.id)
        ).all()
    return [
        {
            "reason": r.reason,
            "at": r.at,
            "status": r.status,
            "pipeline_run_id": r.pipeline_run_id,
            "error": r.error,
        }
        for r in rows
    ]
