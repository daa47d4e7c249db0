"""The fluent tracking API: ``with cauce.start_run(): cauce.log_metric(...)``.

Runs started here form a stack per thread; the top of the stack is the *active run* that the
``log_*`` functions write to unless they are given ``run_id=``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

from cauce.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from cauce.tracking import artifacts as run_artifacts
from cauce.tracking import experiments, runs, search
from cauce.tracking.entities import Experiment, Run, RunData, RunInfo, RunInputs

if TYPE_CHECKING:
    import pandas as pd

    from cauce.workspace import Workspace

_local = threading.local()
_chosen: dict[str, str] = {}  # "experiment": set_experiment's choice, for the whole process


def _stack() -> list[ActiveRun]:
    stack: list[ActiveRun] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class ActiveRun:
    """A run started by :func:`start_run`; a context manager that ends it.

    ``info``, ``data`` and ``inputs`` are read from the store each time, so after the ``with``
    block ``run.info.status`` is FINISHED (or FAILED, with ``run.info.error``).
    """

    def __init__(self, info: RunInfo):
        self.run_id = info.run_id
        self._info = info

    @property
    def info(self) -> RunInfo:
        """The run's identity and status, as stored now."""
        return self.fetch().info

    @property
    def data(self) -> RunData:
        """The run's latest metrics, params and tags, as stored now."""
        return self.fetch().data

    @property
    def inputs(self) -> RunInputs:
        """The dataset versions the run used."""
        return self.fetch().inputs

    def fetch(self) -> Run:
        """The whole run as stored now."""
        return runs.get_run(self.run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            end_run("FINISHED", run_id=self.run_id)
        elif isinstance(exc, KeyboardInterrupt):
            end_run("KILLED", run_id=self.run_id, error="KeyboardInterrupt")
        else:
            end_run("FAILED", run_id=self.run_id, error=f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id} {self._info.run_name!r}>"


def set_experiment(name: str) -> Experiment:
    """Make ``name`` the experiment that :func:`start_run` uses when it names none, in this
    process (over ``CAUCE_EXPERIMENT``); created when missing, as MLflow's ``set_experiment``.

    Example::

        cauce.set_experiment("churn")
        with cauce.start_run():
            cauce.log_metric("auc", 0.91)
    """
    try:
        found = experiments.get_experiment(name)
    except NotFound:
        try:
            found = experiments.create_experiment(name)
        except AlreadyExists:  # created by another process meanwhile
            found = experiments.get_experiment(name)
    if found.lifecycle_stage != "active":
        raise Conflict(
            f"experiment {name!r} is deleted",
            hint=f"restore it first: cauce experiments restore {name}",
        )
    _chosen["experiment"] = found.name
    return found


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    nested: bool = False,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active run.

    A run started while another is active must say ``nested=True``; it becomes a child run.

    Example::

        with cauce.start_run(experiment="churn", run_name="baseline") as run:
            cauce.log_metric("auc", 0.91)
    """
    stack = _stack()
    if stack and not nested:
        raise Conflict(
            f"run {stack[-1].run_id} is already active",
            hint="end it first, or pass nested=True to start a child run",
        )
    parent = stack[-1].run_id if stack else None
    if run_id is not None:
        current = runs.get_run(run_id)
        runs.set_run_status(run_id, "RUNNING", tags=tags)
        info = current.info
    else:
        # A child run belongs to its parent's experiment unless it names another.
        inherited = stack[-1]._info.experiment_id if stack and experiment is None else None
        info = runs.create_run(
            experiment or _chosen.get("experiment"),
            run_name,
            parent_run_id=parent,
            tags=tags,
            experiment_id=inherited,
        )
        runs.note_started(info.run_id)  # a pipeline step's lineage, on the caller's side
    active = ActiveRun(info)
    stack.append(active)
    return active


def active_run() -> ActiveRun | None:
    """The run that ``log_*`` functions write to, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def end_run(
    status: str = "FINISHED", *, run_id: str | None = None, error: str | None = None
) -> None:
    """End the active run (or ``run_id``) with a status; it leaves the active-run stack."""
    stack = _stack()
    target = run_id or (stack[-1].run_id if stack else None)
    if target is None:
        raise NotFound("there is no active run to end")
    runs.end_run(target, status, error=error)
    _local.last = target
    for i in range(len(stack) - 1, -1, -1):
        if stack[i].run_id == target:
            del stack[i]
            break


def last_active_run() -> Run | None:
    """The active run, else the run this thread ended last (a ``with`` block, ``end_run``, a
    fit :func:`~cauce.autolog` recorded), as stored now; None when there is neither."""
    active = active_run()
    last = active.run_id if active is not None else getattr(_local, "last", None)
    return runs.get_run(last) if last is not None else None


def _run_id(run_id: str | None) -> str:
    if run_id is not None:
        return run_id
    stack = _stack()
    if not stack:
        raise NotFound(
            "there is no active run",
            hint="wrap the code in 'with cauce.start_run():' or pass run_id=",
        )
    return stack[-1].run_id


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    *,
    run_id: str | None = None,
) -> None:
    """Log a metric value to the active run; it is durable when this returns."""
    runs.log_metric(_run_id(run_id), key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    *,
    run_id: str | None = None,
) -> None:
    """Log several metric values to the active run in one write."""
    runs.log_metrics(_run_id(run_id), metrics, step, timestamp)


def log_param(key: str, value: Any, *, run_id: str | None = None) -> Any:
    """Log a parameter to the active run and return its value."""
    runs.log_params(_run_id(run_id), {key: value})
    return value


def log_params(params: Mapping[str, Any], *, run_id: str | None = None) -> None:
    """Log parameters to the active run in one write."""
    runs.log_params(_run_id(run_id), params)


def set_tag(key: str, value: Any, *, run_id: str | None = None) -> None:
    """Set a tag on the active run."""
    runs.set_tags(_run_id(run_id), {key: value})


def set_tags(tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
    """Set several tags on the active run."""
    runs.set_tags(_run_id(run_id), tags)


def log_artifact(
    local_path: str | Path, artifact_path: str | None = None, *, run_id: str | None = None
) -> str:
    """Store a local file as an artifact of the active run; return its path in the run."""
    return run_artifacts.log_artifact(_run_id(run_id), local_path, artifact_path)


def log_artifacts(
    local_dir: str | Path, artifact_path: str | None = None, *, run_id: str | None = None
) -> list[str]:
    """Store every file under a local folder as artifacts of the active run."""
    return run_artifacts.log_artifacts(_run_id(run_id), local_dir, artifact_path)


def log_text(text: str, artifact_file: str, *, run_id: str | None = None) -> str:
    """Store text as the active run's file ``artifact_file``; return its path."""
    return run_artifacts.log_text(_run_id(run_id), text, artifact_file)


def log_dict(
    dictionary: Mapping[str, Any], artifact_file: str, *, run_id: str | None = None
) -> str:
    """Store a dictionary as JSON, or YAML for a ``.yaml`` name, in the active run."""
    return run_artifacts.log_dict(_run_id(run_id), dictionary, artifact_file)


def log_table(data: Any, artifact_file: str, *, run_id: str | None = None) -> str:
    """Store a table as Parquet, CSV or JSON (by ``artifact_file``'s extension) in the active
    run."""
    return run_artifacts.log_table(_run_id(run_id), data, artifact_file)


def log_image(image: Any, artifact_file: str, *, run_id: str | None = None) -> str:
    """Store an image (a Pillow image or an array of pixels) as PNG or JPEG in the active run."""
    return run_artifacts.log_image(_run_id(run_id), image, artifact_file)


def log_figure(figure: Any, artifact_file: str, *, run_id: str | None = None) -> str:
    """Store a matplotlib figure as PNG, JPEG, SVG or PDF in the active run."""
    return run_artifacts.log_figure(_run_id(run_id), figure, artifact_file)


def log_input(
    dataset_version: Any, context: str = "training", *, run_id: str | None = None
) -> None:
    """Record that the active run used a dataset version (``DatasetVersion`` or ``"name@3"``)."""
    if dataset_version is None:
        raise InvalidInput("log_input needs a dataset version")
    runs.log_input(_run_id(run_id), dataset_version, context)


@overload
def search_runs(
    experiment: str | Sequence[str] | None = ...,
    filter: str | None = ...,
    order_by: Sequence[str] | None = ...,
    max_results: int = ...,
    *,
    offset: int = ...,
    lifecycle: str = ...,
    output_format: Literal["list"] = ...,
    workspace: Workspace | None = ...,
) -> list[Run]: ...


@overload
def search_runs(
    experiment: str | Sequence[str] | None = ...,
    filter: str | None = ...,
    order_by: Sequence[str] | None = ...,
    max_results: int = ...,
    *,
    offset: int = ...,
    lifecycle: str = ...,
    output_format: Literal["pandas"],
    workspace: Workspace | None = ...,
) -> pd.DataFrame: ...


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    *,
    offset: int = 0,
    lifecycle: str = "active",
    output_format: str = "list",
    workspace: Workspace | None = None,
) -> list[Run] | pd.DataFrame:
    """Runs of the experiments (names or ids; None for all) that match ``filter``, ordered.

    ``offset`` skips that many matches (for paging); ``lifecycle`` is ``active`` (the default),
    ``deleted`` or ``all``. ``output_format="pandas"`` answers a DataFrame, a row per run in
    the same order, laid out as MLflow's: ``run_id``, ``experiment_id``, ``run_name``,
    ``status``, ``start_time`` and ``end_time`` (UTC), ``user_id``, ``parent_run_id``,
    ``artifact_uri``, then a ``metrics.<key>``, ``params.<key>`` and ``tags.<key>`` column for
    each key any of the runs has (NaN or None where a run lacks it).

    Example::

        cauce.search_runs("churn", filter="metrics.auc > 0.9", order_by=["metrics.auc DESC"])
        cauce.search_runs("churn", output_format="pandas").sort_values("metrics.auc")
    """
    if output_format not in ("list", "pandas"):
        raise InvalidInput(
            f"output_format must be list or pandas, not {output_format!r}",
            details={"field": "output_format"},
        )
    found = search.search_runs(
        experiment,
        filter,
        order_by,
        max_results,
        offset=offset,
        lifecycle=lifecycle,
        workspace=workspace,
    )
    return found if output_format == "list" else search.runs_frame(found)
