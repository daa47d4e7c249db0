"""Stored pipeline runs: read back with their step runs, and listed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput, NotFound
from cauce.operations import operation
from cauce.store import id_matches, only_match
from cauce.validation import check_limit
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from sqlalchemy import Connection


@dataclass
class StepRun:
    """One stored execution (or cache reuse, or skip) of a step."""

    id: str
    step: str
    status: str
    cache_key: str
    cache_hit: bool
    attempts: int
    start_time: int
    end_time: int | None
    duration_ms: int | None
    error: str | None
    inputs: dict[str, Any]
    output: dict[str, Any] | None
    stats: dict[str, Any] | None

    @property
    def took_time(self) -> bool:
        """Whether ``duration_ms`` measures something: the step ran, or its output was reused
        (a skipped step, or one that failed to start, stores 0)."""
        return self.attempts > 0 or self.cache_hit

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dict(self.__dict__)


@dataclass
class PipelineRun:
    """A stored pipeline run: its status, parameters and step runs by step name."""

    id: str
    pipeline: str
    status: str
    executor: str
    params: dict[str, Any]
    start_time: int
    end_time: int | None
    error: str | None
    user: str
    # Set when the run did one piece of work that must not run twice (an alert's retraining).
    idempotency_key: str | None = None
    steps: dict[str, StepRun] = field(default_factory=dict)
    # What the pipeline function returned, with step names in place of placeholders.
    returned: Any = field(default=None, repr=False)
    # As returned by a run with a key: an earlier run with it had succeeded and nothing ran
    # (``reused``), or this run resumed earlier ones whose runner had died (``resumed``).
    reused: bool = field(default=False, compare=False)
    resumed: list[str] = field(default_factory=list, compare=False)

    @property
    def workspace(self) -> Workspace | None:
        """The workspace the run was read from (where ``output`` loads from); not a field, so
        that a run travels as JSON."""
        return self.__dict__.get("_workspace")

    @workspace.setter
    def workspace(self, ws: Workspace | None) -> None:
        self.__dict__["_workspace"] = ws

    @property
    def succeeded(self) -> bool:
        """Whether every step succeeded (ran or was reused from the cache)."""
        return self.status == "SUCCEEDED"

    def output(self, step: str) -> Any:
        """Load the output of a step of this run from the artifact store (verified)."""
        from cauce.pipelines import materializers

        if step not in self.steps:
            raise NotFound(
                f"pipeline run {self.id} has no step {step!r} (its steps: {', '.join(self.steps)})"
            )
        found = self.steps[step]
        if found.output is None:
            raise NotFound(f"step {step!r} of pipeline run {self.id} has no output: {found.status}")
        ws = self.workspace or current()
        return materializers.load(ws.artifacts, found.output)

    def result(self) -> Any:
        """What the pipeline function returned, each step output loaded."""
        return self._resolve(self.returned)

    def _resolve(self, value: Any) -> Any:
        from cauce.pipelines.graph import Placeholder

        if isinstance(value, Placeholder):
            return self.output(value.node)
        if isinstance(value, (list, tuple)):
            return type(value)(self._resolve(v) for v in value)
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, step runs included."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": self.status,
            "executor": self.executor,
            "params": self.params,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "error": self.error,
            "user": self.user,
            "idempotency_key": self.idempotency_key,
            "steps": [s.to_dict() for s in self.steps.values()],
        }


def get_pipeline_run(run_id: str, *, workspace: Workspace | None = None) -> PipelineRun:
    """A stored pipeline run with its step runs, by its id or the start of it (4 or more
    characters) when that names one run; NotFound names a missing id."""
    ws = workspace or current()
    run = read_pipeline_run(run_id, workspace=ws)
    run.workspace = ws
    return run


def list_pipeline_runs(
    pipeline: str | None = None, *, max_results: int = 50, workspace: Workspace | None = None
) -> list[PipelineRun]:
    """Recent pipeline runs, newest first, with their step runs."""
    ws = workspace or current()
    runs = read_pipeline_runs(pipeline, max_results=max_results, workspace=ws)
    for run in runs:
        run.workspace = ws
    return runs


@operation("GET /pipeline-runs/{run_id}")
def read_pipeline_run(run_id: str, *, workspace: Workspace | None = None) -> PipelineRun:
    """The stored pipeline run ``run_id`` (or the start of its id, 4 or more characters, when
    that names one run) with its step runs (see :func:`get_pipeline_run`)."""
    from sqlalchemy import select

    from cauce.store.schema import pipeline_runs, pipelines

    ws = workspace or current()
    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidInput("a pipeline run id is a non-empty string")
    with ws.store.read() as conn:
        rows = conn.execute(
            select(pipeline_runs, pipelines.c.name)
            .join(pipelines, pipelines.c.id == pipeline_runs.c.pipeline_id)
            .where(id_matches(pipeline_runs.c.id, run_id))
            .limit(2)
        ).all()
        row = only_match(rows, run_id, "pipeline run", "run_id", hint="cauce pipelines list")
        [run] = _with_steps(conn, [row])
    return run


def _with_steps(conn: Connection, rows: Iterable[Any]) -> list[PipelineRun]:
    """Pipeline runs from their rows (joined with the pipeline's name), with their step runs."""
    from sqlalchemy import select

    from cauce.store.schema import step_runs

    found = {row.id: _pipeline_run(row) for row in rows}
    steps = conn.execute(
        select(step_runs)
        .where(step_runs.c.pipeline_run_id.in_(list(found)))
        .order_by(step_runs.c.id)  # ids of one run sort in the order steps were recorded
    )
    for step in steps:
        found[step.pipeline_run_id].steps[step.step] = _step_run(step)
    return list(found.values())


def _step_run(row: Any) -> StepRun:
    return StepRun(
        id=row.id,
        step=row.step,
        status=row.status,
        cache_key=row.cache_key,
        cache_hit=bool(row.cache_hit),
        attempts=row.attempts,
        start_time=row.start_time,
        end_time=row.end_time,
        duration_ms=row.duration_ms,
        error=row.error,
        inputs=row.inputs or {},
        output=row.output,
        stats=row.stats,
    )


@operation("GET /pipeline-runs")
def read_pipeline_runs(
    pipeline: str | None = None, *, max_results: int = 50, workspace: Workspace | None = None
) -> list[PipelineRun]:
    """Recent pipeline runs, newest first, with their step runs (see
    :func:`list_pipeline_runs`)."""
    from sqlalchemy import select

    from cauce.store.schema import pipeline_runs, pipelines

    check_limit(max_results, "max_results")
    ws = workspace or current()
    query = (
        select(pipeline_runs, pipelines.c.name)
        .join(pipelines, pipelines.c.id == pipeline_runs.c.pipeline_id)
        .order_by(pipeline_runs.c.start_time.desc())
        .limit(max_results)
    )
    if pipeline is not None:
        query = query.where(pipelines.c.name == pipeline)
    with ws.store.read() as conn:
        return _with_steps(conn, conn.execute(query).all())


def _pipeline_run(row: Any) -> PipelineRun:
    return PipelineRun(
        id=row.id,
        pipeline=row.name,
        status=row.status,
        executor=row.executor,
        params=row.params or {},
        start_time=row.start_time,
        end_time=row.end_time,
        error=row.error,
        user=row.user,
        idempotency_key=row.idempotency_key,
    )
