"""The runner: traces a pipeline, schedules its steps on an executor, reuses cached outputs and
stores every pipeline run and step run (audited, with lineage edges).

Scheduling: a step starts once every step it takes an output from has succeeded; a step whose
upstream failed (or was skipped) is stored as SKIPPED and never runs, while independent branches
go on. The pipeline run is SUCCEEDED when every step succeeded, else FAILED. Because successful
outputs are cached, running the pipeline again after a fix resumes where it failed.

Stored per step run: ``inputs`` (``{argument: {"step", "sha256", "kind"} | {"sha256", "kind"} |
{"value"}}``), ``output`` (the materializer's JSON), ``stats`` (duration, plus row count and
null rates of a DataFrame output, and any anomalies against the step's earlier runs). Lineage:
``pipeline_run → step_run`` (``step``), ``step_run → step_run`` (``input``: an output consumed
downstream), ``dataset_version → step_run`` (``input``: a version the step read with
``cauce.data.load``), ``step_run → step_run`` (``cached``: the run whose output a cache hit
reused), ``step_run → artifact`` (``output``: the blob of its output) and ``artifact →
step_run`` (``input``: an argument stored as a blob). With ``CAUCE_OPENLINEAGE_URL`` set, each
pipeline run and step run also sends OpenLineage START and COMPLETE (or FAIL) events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.errors import CauceError
from cauce.pipelines import executors, materializers, records
from cauce.pipelines.cache import cache_key, canonical_json
from cauce.pipelines.executors.base import (
    FAILED,
    SKIPPED,
    SUCCEEDED,
    Executor,
    StepResult,
    StepTask,
)
from cauce.pipelines.graph import Graph, Node, Placeholder, trace
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.artifacts import Blob
    from cauce.pipelines.decorators import Pipeline
    from cauce.pipelines.runs import PipelineRun


@dataclass
class _Prepared:
    key: str
    task: StepTask
    inputs: dict[str, Any]
    blobs: list[Blob] = field(default_factory=list)


def run_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    executor: str = "local",
    cache: bool = True,
    workspace: Workspace | None = None,
    max_workers: int | None = None,
    key: str | None = None,
    start_with: Callable[[records.RunStart], records.RunStarted] | None = None,
) -> PipelineRun:
    """Run ``pipeline`` with ``params`` on the named executor; return the stored run.

    ``key`` (an idempotency key: an alert action's) names one piece of work that must not run
    twice, and the run is tagged with it. A run with the same key that SUCCEEDED is returned
    instead of running again (``reused``). One still RUNNING was left by a runner that died (the
    caller holds the key alone, which ``start_with`` checks in the transaction that starts the
    run, raising if not, in place of :func:`~cauce.pipelines.records.start_pipeline_run`): it is
    marked FAILED as abandoned, and this run resumes it, the steps it finished reused from the
    step cache (``resumed`` names it).
    """
    from cauce.pipelines.runs import get_pipeline_run
    from cauce.store import new_id

    ws = workspace or current()
    executor_cls = executors.executor_class(executor)  # an unknown name fails before any write
    arguments = pipeline.bind(params)
    graph = trace(pipeline, arguments)
    start = records.RunStart(
        id=new_id(),
        pipeline=pipeline.name,
        source=_source(pipeline),
        executor=executor,
        # A parameter JSON cannot hold (a DataFrame…) is recorded by its type, not its repr.
        params={k: _recordable(v) for k, v in arguments.items()},
        key=key,
    )
    if start_with is None:
        started = records.start_pipeline_run(start, workspace=ws)
    else:
        started = start_with(start)
    if started.done is not None:
        reused = get_pipeline_run(started.done, workspace=ws)
        reused.returned, reused.reused = graph.result, True
        return reused
    run_id = start.id
    _emit(ws, "START", run_id, pipeline.name)
    runner = _Runner(
        ws,
        graph,
        run_id,
        cache,
        executor_cls(ws, max_workers=max_workers),
        pipeline=(started.pipeline_id, pipeline.name),
    )
    try:
        runner.run()
        status, error = runner.outcome()
    except BaseException as exc:  # interrupted: the run must not stay RUNNING
        status, error = FAILED, f"interrupted: {type(exc).__name__}: {exc}"
        records.finish_pipeline_run(run_id, status, error, workspace=ws)
        _emit(ws, "FAIL", run_id, pipeline.name, error=error)
        raise
    finally:
        runner.executor.close()
    records.finish_pipeline_run(run_id, status, error, workspace=ws)
    _emit(ws, "COMPLETE" if status == SUCCEEDED else "FAIL", run_id, pipeline.name, error=error)
    run = get_pipeline_run(run_id, workspace=ws)
    run.returned, run.resumed = graph.result, started.abandoned
    return run


def _source(pipeline: Pipeline) -> str:
    """Where the pipeline function is defined, as ``file.py:qualname`` (else ``module:``)."""
    import inspect

    try:
        return f"{Path(inspect.getsourcefile(pipeline.fn) or '')}:{pipeline.fn.__qualname__}"
    except TypeError:
        return f"{pipeline.fn.__module__}:{pipeline.fn.__qualname__}"


def _recordable(value: Any) -> Any:
    text = canonical_json(value)
    return json.loads(text) if text is not None else f"<{type(value).__name__}>"


def _emit(
    ws: Workspace,
    event_type: str,
    run_id: str,
    job: str,
    *,
    parent: tuple[str, str] | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    error: str | None = None,
    at_ms: int | None = None,
) -> None:
    """Send an OpenLineage RunEvent when CAUCE_OPENLINEAGE_URL is set (never fails the run)."""
    target = ws.settings.openlineage_url
    if not target:
        return
    import datetime as dt

    from cauce.lineage import openlineage

    namespace = ws.settings.openlineage_namespace
    event = openlineage.run_event(
        event_type,
        run_id=run_id,
        job=job,
        namespace=namespace,
        inputs=[openlineage.dataset(namespace, name) for name in inputs],
        outputs=[openlineage.dataset(namespace, name) for name in outputs],
        parent=parent,
        error=error,
        event_time=dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC) if at_ms else None,
    )
    openlineage.send(event, target)


class _Runner:
    def __init__(
        self,
        ws: Workspace,
        graph: Graph,
        run_id: str,
        cache: bool,
        executor: Executor,
        *,
        pipeline: tuple[str, str],
    ) -> None:
        self.ws = ws
        self.pipeline_id, self.pipeline_name = pipeline
        self.graph = graph
        self.run_id = run_id
        self.cache = cache
        self.executor = executor
        self.states: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.recorded = 0

    def run(self) -> None:
        remaining = list(self.graph.nodes)
        running: dict[Future[StepResult], tuple[Node, _Prepared]] = {}
        while remaining or running:
            for name in list(remaining):
                node = self.graph.nodes[name]
                upstream = [self.states.get(dep) for dep in node.deps]
                if any(s in (FAILED, SKIPPED) for s in upstream):
                    remaining.remove(name)
                    self._skip(node)
                    continue
                if not all(s == SUCCEEDED for s in upstream):
                    continue
                remaining.remove(name)
                prepared = self._prepare(node)
                if prepared is None:
                    continue
                if self.cache and node.step.cache and self._reuse(node, prepared):
                    continue
                running[self.executor.submit(prepared.task)] = (node, prepared)
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                node, prepared = running.pop(future)
                self._record(node, prepared, future.result())

    def outcome(self) -> tuple[str, str | None]:
        if all(self.states.get(n) == SUCCEEDED for n in self.graph.nodes):
            return SUCCEEDED, None
        failed = [f"step {n!r} failed: {e}" for n, e in self.errors.items()]
        skipped = sum(1 for s in self.states.values() if s == SKIPPED)
        if skipped:
            failed.append(f"{skipped} dependent step{'s' if skipped != 1 else ''} skipped")
        return FAILED, "; ".join(failed)

    # -- one node -----------------------------------------------------------------------

    def _prepare(self, node: Node) -> _Prepared | None:
        """The task, cache key and recorded inputs of a node whose upstream succeeded."""
        constants: dict[str, Any] = {}
        params: dict[str, Any] = {}
        refs: dict[str, dict[str, Any]] = {}
        digests: dict[str, str] = {}
        inputs: dict[str, Any] = {}
        blobs: list[Blob] = []
        for arg, value in node.arguments.items():
            if isinstance(value, Placeholder):
                out = self.outputs[value.node]
                refs[arg] = out
                digests[arg] = out["sha256"]
                inputs[arg] = {"step": value.node, "sha256": out["sha256"], "kind": out["kind"]}
                continue
            text = canonical_json(value)
            if text is not None:
                constants[arg] = value
                params[arg] = inputs[arg] = {"value": json.loads(text)}
                continue
            try:  # not JSON: stored once as an artifact, passed and keyed by its sha256
                out, blob = materializers.store(self.ws.artifacts, value, node.name)
            except CauceError as exc:
                self._record_failure(node, f"argument {arg!r} cannot be stored: {exc}", inputs)
                return None
            blobs.append(blob)
            refs[arg] = out
            digests[arg] = out["sha256"]
            inputs[arg] = {"sha256": out["sha256"], "kind": out["kind"]}
        key = cache_key(node.step, params, digests)
        return _Prepared(key, StepTask(node.name, node.step, constants, refs), inputs, blobs)

    def _reuse(self, node: Node, prepared: _Prepared) -> bool:
        """Record a cache hit when a verified output with the same key exists."""
        from cauce.store import now_ms

        start = now_ms()
        row = records.cached_output(prepared.key, workspace=self.ws)
        if row is None:
            return False
        end = now_ms()
        stats = dict(row.stats or {})
        stats["duration_ms"] = end - start
        result = StepResult(node.name, SUCCEEDED, 0, start, end, end - start, None, row.output)
        result.stats = stats
        self._record(node, prepared, result, cached_from=row.id)
        return True

    def _record(
        self,
        node: Node,
        prepared: _Prepared,
        result: StepResult,
        *,
        cached_from: str | None = None,
    ) -> None:
        output = result.output
        edges = [(self.ids[dep], "input") for dep in node.deps]
        if cached_from is not None:
            edges.append((cached_from, "cached"))
        if result.status == SUCCEEDED and cached_from is None:
            self._check_anomalies(node, result)

        step_run_id = self._insert(
            node.name,
            status=result.status,
            cache_key=prepared.key,
            cache_hit=cached_from is not None,
            attempts=result.attempts,
            start_time=result.start_time,
            end_time=result.end_time,
            duration_ms=result.duration_ms,
            error=result.error,
            inputs=prepared.inputs,
            output=output,
            stats=result.stats or None,
            blobs=prepared.blobs,
            edges=edges,
            datasets=result.datasets,
            started=result.runs,
        )
        self._emit_step(node, step_run_id, result, prepared.blobs)
        self.states[node.name] = result.status
        self.ids[node.name] = step_run_id
        if result.status == SUCCEEDED and result.output is not None:
            self.outputs[node.name] = result.output
        elif result.error:
            self.errors[node.name] = result.error

    def _check_anomalies(self, node: Node, result: StepResult) -> None:
        """Compare the step's stats with its earlier runs; warn, or fail the step (its policy)."""
        import logging

        from cauce.pipelines.anomalies import find_anomalies

        if node.step.anomalies == "off":
            return
        previous = records.step_history(self.pipeline_id, node.name, self.run_id, workspace=self.ws)
        found = find_anomalies(result.stats, previous)
        if not found:
            return
        result.stats["anomalies"] = [a.to_dict() for a in found]
        text = "; ".join(a.message() for a in found)
        if node.step.anomalies == "fail":
            result.status = FAILED
            result.error = f"anomalies in the data flow: {text}"
        else:
            logging.getLogger("cauce.pipelines").warning("step %r: %s", node.name, text)

    def _emit_step(
        self, node: Node, step_run_id: str, result: StepResult, blobs: list[Blob]
    ) -> None:
        if not self.ws.settings.openlineage_url:
            return
        job = f"{self.pipeline_name}.{node.name}"
        parent = (self.run_id, self.pipeline_name)
        inputs = [f"{self.pipeline_name}.{dep}" for dep in node.deps]
        inputs += [f"dataset_version/{d}" for d in result.datasets]
        inputs += [f"artifact/{sha}" for sha in sorted({b.sha256 for b in blobs})]
        output = result.output
        outputs = [job, f"artifact/{output['sha256']}"] if output is not None else []
        _emit(
            self.ws,
            "START",
            step_run_id,
            job,
            parent=parent,
            inputs=inputs,
            at_ms=result.start_time,
        )
        final = "COMPLETE" if result.status == SUCCEEDED else "FAIL"
        _emit(
            self.ws,
            final,
            step_run_id,
            job,
            parent=parent,
            inputs=inputs,
            outputs=outputs,
            error=result.error,
            at_ms=result.end_time,
        )

    def _record_failure(self, node: Node, error: str, inputs: dict[str, Any]) -> None:
        self._record_not_run(node, FAILED, error, inputs)
        self.errors[node.name] = error

    def _skip(self, node: Node) -> None:
        blocked = next(d for d in node.deps if self.states.get(d) in (FAILED, SKIPPED))
        inputs: dict[str, Any] = {}
        for arg, value in node.arguments.items():
            if isinstance(value, Placeholder):
                inputs[arg] = {"step": value.node}
            else:
                text = canonical_json(value)
                inputs[arg] = (
                    {"value": json.loads(text)} if text else {"type": type(value).__name__}
                )
        error = f"not run: upstream step {blocked!r} did not succeed"
        self._record_not_run(node, SKIPPED, error, inputs)

    def _record_not_run(self, node: Node, status: str, error: str, inputs: dict[str, Any]) -> None:
        """Store a step run that never executed (it failed to start, or was skipped)."""
        from cauce.store import now_ms

        now = now_ms()
        self.ids[node.name] = self._insert(
            node.name,
            status=status,
            cache_key="",
            cache_hit=False,
            attempts=0,
            start_time=now,
            end_time=now,
            duration_ms=0,
            error=error,
            inputs=inputs,
            output=None,
            stats=None,
        )
        self.states[node.name] = status

    def _insert(
        self,
        step: str,
        *,
        blobs: list[Blob] | None = None,
        edges: list[tuple[str, str]] | None = None,
        datasets: list[str] | None = None,
        started: list[str] | None = None,
        **values: Any,
    ) -> str:
        """Store a step run (see :func:`records.record_step_run`); its id."""
        # The run's id prefix and a counter: unique, and sorted in the order steps were recorded
        # (a step after the steps it takes outputs from), which listing the run relies on.
        self.recorded += 1
        step_run_id = f"{self.run_id[:20]}{self.recorded:012x}"
        record = records.StepRecord(
            id=step_run_id,
            step=step,
            blobs=list(blobs or []),
            edges=list(edges or []),
            datasets=list(datasets or []),
            started=list(started or []),
            **values,
        )
        records.record_step_run(self.run_id, record, workspace=self.ws)
        return step_run_id
