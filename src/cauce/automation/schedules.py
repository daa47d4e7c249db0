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

The agent's claim of what is due (:func:`claim_schedules`) and the end of each firing
(:func:`end_firing`) are operations: through a server, the compare-and-set runs there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, func, select

from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.pipelines.executors.base import FAILED, SUCCEEDED
from cauce.specs import Applied, save_spec
from cauce.store import new_id, now_ms
from cauce.store.schema import dataset_versions, datasets, schedule_firings, schedules
from cauce.validation import check_cron, check_name, check_time_ms, next_cron_time
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


@dataclass(frozen=True)
class ScheduleClaim:
    """A firing the agent claimed: its id, the schedule, why it fires, and the spec to run."""

    firing_id: str
    schedule: str
    reason: str
    spec: dict[str, Any]


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _due(conn: Connection, now: int) -> list[tuple[Any, str, dict[str, Any], Any]]:
    """Each enabled schedule due at ``now``: its row, the reason, the changes that claim it,
    and the guard that the row is still as read."""
    s = schedules.c
    due = []
    for row in conn.execute(select(schedules).where(s.enabled.is_(True)).order_by(s.name)):
        spec = row.spec
        if spec.get("cron"):
            if row.next_run_at is None or row.next_run_at > now:
                continue
            reason = f"cron {spec['cron']}: due at {_iso(row.next_run_at)}"
            # Missed slots collapse into this one firing: the next is after now.
            changes = {"next_run_at": next_cron_time(spec["cron"], now)}
            guard = s.next_run_at == row.next_run_at
        else:
            newest = newest_version(conn, spec["trigger"]["dataset"])
            if newest is None or newest <= (row.last_seen_version or 0):
                continue
            reason = f"dataset {spec['trigger']['dataset']} v{newest}"
            changes = {"last_seen_version": newest}
            guard = s.last_seen_version == row.last_seen_version
        due.append((row, reason, changes, guard))
    return due


@operation("POST /schedules/claims")
def claim_schedules(
    *,
    now: int | None = None,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> tuple[ScheduleClaim, ...]:
    """Claim every schedule due at ``now`` (the server's clock by default) and record a RUNNING
    firing for each, audited as ``schedule.fire``; return the claims.

    Each claim is a compare-and-set on the schedule's ``next_run_at`` (cron) or
    ``last_seen_version`` (dataset trigger): of several agents, one fires each slot.
    """
    ws = workspace or current()
    now = now_ms() if now is None else check_time_ms(now, "now")
    with ws.store.read() as conn:  # most looks find nothing: no write lock for those
        if not _due(conn, now):
            return ()
    claimed = []
    with ws.store.write() as conn:
        for row, reason, changes, guard in _due(conn, now):
            result = conn.execute(
                schedules.update()
                .where(schedules.c.id == row.id, guard)
                .values(last_run_at=now, **changes),
                execution_options={"preserve_rowcount": True},
            )
            if result.rowcount != 1:
                continue  # another agent claimed it
            firing_id = new_id()
            conn.execute(
                schedule_firings.insert().values(
                    id=firing_id, schedule_id=row.id, reason=reason, at=now, status="RUNNING"
                )
            )
            audit.record(
                conn,
                actor or ws.user,
                "schedule.fire",
                "schedule",
                row.id,
                after={"reason": reason, "firing_id": firing_id},
            )
            claimed.append(ScheduleClaim(firing_id, row.name, reason, row.spec))
    return tuple(claimed)


@operation("POST /schedule-firings/{firing_id}/end", idempotent=True)
def end_firing(
    firing_id: str,
    status: str,
    *,
    pipeline_run_id: str | None = None,
    error: str | None = None,
    workspace: Workspace | None = None,
) -> None:
    """Record how a firing ended: its pipeline run's status (SUCCEEDED or FAILED), the run, and
    the error, if any."""
    ws = workspace or current()
    if status not in (SUCCEEDED, FAILED):
        raise InvalidInput(
            f"a firing ends {SUCCEEDED} or {FAILED}, not {status!r}", details={"field": "status"}
        )
    if pipeline_run_id is not None and (
        not isinstance(pipeline_run_id, str) or len(pipeline_run_id) > 32
    ):
        raise InvalidInput(
            f"pipeline_run_id must be a run id, not {pipeline_run_id!r}",
            details={"field": "pipeline_run_id"},
        )
    if error is not None and not isinstance(error, str):
        raise InvalidInput(f"error must be text, not {error!r}", details={"field": "error"})
    with ws.store.write() as conn:
        result = conn.execute(
            schedule_firings.update()
            .where(schedule_firings.c.id == firing_id)
            .values(status=status, pipeline_run_id=pipeline_run_id, error=error),
            execution_options={"preserve_rowcount": True},
        )
        if result.rowcount != 1:
            raise NotFound(f"schedule firing {firing_id!r} does not exist")
