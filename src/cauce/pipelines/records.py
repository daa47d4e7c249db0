"""What a pipeline run stores, as operations: the runner's writes and cache lookups.

The steps run on the caller's machine; what the runner stores goes through the storage seam
(see :mod:`cauce.operations`), so the same runner works on a local workspace and on a Cauce
server's. Each operation is one transaction where it must be all-or-nothing:

- :func:`start_pipeline_run`: the pipeline (created on its first run), the run row, its audit
  event, and, for a keyed run, the keyed runs it finds (one that succeeded is reused; those still
  RUNNING are marked FAILED as abandoned);
- :func:`record_step_run`: one step run's row, the blobs it refers to, its lineage edges and its
  audit event;
- :func:`finish_pipeline_run`: the run's final status and its audit event.

:func:`cached_output` looks a cache key up and checks that the stored output is intact (where
the artifact store is: a corrupted blob is moved aside there), and :func:`step_history` gives a
step's earlier stats for the anomaly checks. Blobs (step outputs, non-JSON arguments) travel
through ``ws.artifacts`` before the records that name them; the server checks that it holds
them and records them with its own URIs.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.artifacts import Blob
from cauce.errors import AlreadyExists, BackendError, CauceError, InvalidInput, NotFound
from cauce.operations import operation
from cauce.pipelines.executors.base import FAILED, RUNNING, SKIPPED, SUCCEEDED
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "CachedOutput",
    "RunStart",
    "RunStarted",
    "StepRecord",
    "cached_output",
    "finish_pipeline_run",
    "record_step_run",
    "start_pipeline_run",
    "start_run_in",
    "step_history",
]


@dataclass
class RunStart:
    """A pipeline run about to start: its id, pipeline, executor and recorded parameters."""

    id: str
    pipeline: str
    # Where the pipeline function is defined (``file.py:qualname``), seen from the caller.
    source: str
    executor: str
    params: dict[str, Any]
    # An idempotency key: one piece of work that must not run twice (an alert action's).
    key: str | None = None


@dataclass
class RunStarted:
    """What starting a run found: the pipeline's id, a keyed run that succeeded already
    (``done``: then nothing was started) and the keyed runs marked abandoned."""

    pipeline_id: str
    done: str | None = None
    abandoned: list[str] = field(default_factory=list)


@dataclass
class StepRecord:
    """One step run to store, with the blobs, lineage and tracked runs it refers to."""

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
    output: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    # Its arguments stored as blobs (not its output: ``output`` names that one).
    blobs: list[Blob] = field(default_factory=list)
    # (upstream step run id, relation): ``input`` from a step it takes an output from,
    # ``cached`` from the run whose output a cache hit reused.
    edges: list[tuple[str, str]] = field(default_factory=list)
    # Ids of the dataset versions it read and of the tracked runs it started.
    datasets: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


@dataclass
class CachedOutput:
    """A stored step run whose output a cache hit may reuse."""

    id: str
    output: dict[str, Any]
    stats: dict[str, Any] | None


@operation("POST /pipeline-runs")
def start_pipeline_run(start: RunStart, *, workspace: Workspace | None = None) -> RunStarted:
    """Store a pipeline run as RUNNING (see :func:`start_run_in`), in one transaction."""
    ws = workspace or current()
    try:
        with ws.store.write() as conn:
            return start_run_in(conn, ws, start)
    except BackendError as exc:
        if exc.__cause__ is not None and ws.store.is_integrity_error(exc.__cause__):
            from cauce.pipelines.runs import read_pipeline_run

            try:
                read_pipeline_run(start.id, workspace=ws)
            except NotFound:
                raise exc from None  # another constraint refused a row of the start
            raise AlreadyExists(f"pipeline run {start.id!r} exists already") from None
        raise


def start_run_in(conn: Connection, ws: Workspace, start: RunStart) -> RunStarted:
    """Start ``start`` in the caller's transaction, unless a run with its key succeeded.

    Runs with its key still RUNNING were left by a runner that died: they are marked FAILED,
    and this run resumes them.
    """
    from cauce.lineage import audit
    from cauce.store import now_ms
    from cauce.store.schema import pipeline_runs

    for name in ("id", "pipeline", "executor"):
        _text(getattr(start, name), f"start.{name}")
    done, abandoned = _keyed(conn, start.key) if start.key is not None else (None, [])
    if done is not None:
        return RunStarted(_pipeline_id(conn, start.pipeline) or "", done=done)
    pipeline_id = _ensure_pipeline(conn, ws.user, start.pipeline, start.source)
    conn.execute(
        pipeline_runs.insert().values(
            id=start.id,
            pipeline_id=pipeline_id,
            status=RUNNING,
            executor=start.executor,
            params=start.params,
            start_time=now_ms(),
            user=ws.user,
            idempotency_key=start.key,
        )
    )
    audit.record(
        conn,
        ws.user,
        "pipeline_run.start",
        "pipeline_run",
        start.id,
        after={
            "pipeline": start.pipeline,
            "executor": start.executor,
            "params": start.params,
            **({"idempotency_key": start.key} if start.key is not None else {}),
        },
    )
    for earlier in abandoned:
        resumed_by = f"run {start.id} with the same key ({start.key}) resumes it"
        _abandon(conn, ws, earlier, resumed_by)
    return RunStarted(pipeline_id, abandoned=abandoned)


@operation("POST /pipeline-runs/{run_id}/end")
def finish_pipeline_run(
    run_id: str, status: str, error: str | None = None, *, workspace: Workspace | None = None
) -> None:
    """Store the final status (and error) of a RUNNING pipeline run, audited."""
    from sqlalchemy import update

    from cauce.lineage import audit
    from cauce.store import now_ms
    from cauce.store.schema import pipeline_runs

    ws = workspace or current()
    if status not in (SUCCEEDED, FAILED):
        raise InvalidInput(
            f"a pipeline run ends {SUCCEEDED} or {FAILED}, not {status!r}",
            details={"field": "status"},
        )
    with ws.store.write() as conn:
        done = conn.execute(
            update(pipeline_runs)
            .where(pipeline_runs.c.id == run_id)
            .values(status=status, end_time=now_ms(), error=error)
        )
        if not done.rowcount:
            raise NotFound(f"pipeline run {run_id!r} does not exist")
        audit.record(
            conn,
            ws.user,
            "pipeline_run.end",
            "pipeline_run",
            run_id,
            before={"status": RUNNING},
            after={"status": status, "error": error},
        )


@operation("GET /step-cache/{cache_key}")
def cached_output(cache_key: str, *, workspace: Workspace | None = None) -> CachedOutput | None:
    """The newest successful step run with ``cache_key`` whose output is stored intact.

    A corrupted output is moved aside (to ``<sha256>.corrupt-<ms>``) so that the step's rerun
    stores it again; then there is no cached output.
    """
    ws = workspace or current()
    with ws.store.fast_write() as tx:  # the hot path: no SQLAlchemy per statement
        found = tx.fetchone(_CACHED_SQL, {"key": cache_key, "status": SUCCEEDED})
    if found is None:
        return None
    output = _json(found[1])
    if not output or not _intact(ws, output["sha256"]):
        return None
    return CachedOutput(found[0], output, _json(found[2]))


@operation("GET /pipelines/{pipeline_id}/steps/{step}/history")
def step_history(
    pipeline_id: str, step: str, exclude_run: str = "", *, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """The stats of the step's 30 latest runs that ran (not cache hits), newest first,
    those of the run ``exclude_run`` left out."""
    ws = workspace or current()
    params = {
        "pipeline": pipeline_id,
        "step": step,
        "status": SUCCEEDED,
        "hit": False,
        "run": exclude_run,
    }
    with ws.store.fast_write() as tx:
        rows = tx.fetchall(_HISTORY_SQL, params)
    return [_json(r[0]) for r in rows if r[0] is not None]


@operation("POST /pipeline-runs/{run_id}/step-runs")
def record_step_run(run_id: str, record: StepRecord, *, workspace: Workspace | None = None) -> None:
    """Store a step run of ``run_id`` in one transaction: its row, the blobs it refers to (its
    arguments', its output's: each must be in the artifact store, recorded with the store's own
    URI), its lineage edges (from its pipeline run, from upstream step runs, from the dataset
    versions it read and its argument blobs; to its output blob and the runs it started) and its
    audit event. Plain SQL on the store's hot path: SQLAlchemy's per-statement cost was most of
    a trivial step's overhead.
    """
    ws = workspace or current()
    _text(record.id, "record.id")
    _text(record.step, "record.step")
    if record.status not in (SUCCEEDED, FAILED, SKIPPED):
        raise InvalidInput(
            f"a step run is {SUCCEEDED}, {FAILED} or {SKIPPED}, not {record.status!r}",
            details={"field": "record.status"},
        )
    output = record.output
    blobs = list(record.blobs)
    if output is not None:
        blobs.append(_output_blob(output))
    stored = [_held(ws, blob, record.step) for blob in blobs]
    row = {
        "id": record.id,
        "pipeline_run_id": run_id,
        "step": record.step,
        "status": record.status,
        "cache_key": record.cache_key,
        "cache_hit": record.cache_hit,
        "attempts": record.attempts,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "duration_ms": record.duration_ms,
        "error": record.error,
        "inputs": record.inputs,
        "output": output,
        "stats": record.stats,
    }
    try:
        _write_step_run(ws, run_id, record, row, stored)
    except BackendError as exc:
        if exc.__cause__ is None or not ws.store.is_integrity_error(exc.__cause__):
            raise
        from cauce.pipelines.runs import read_pipeline_run

        run = read_pipeline_run(run_id, workspace=ws)  # NotFound names a missing run
        if any(step.id == record.id for step in run.steps.values()):
            raise AlreadyExists(f"step run {record.id!r} exists already") from None
        raise  # another constraint refused a row of the step run


def _write_step_run(
    ws: Workspace, run_id: str, record: StepRecord, row: dict[str, Any], stored: list[Blob]
) -> None:
    from cauce.lineage import audit
    from cauce.store import now_ms
    from cauce.store.schema import lineage_edges, step_runs

    output = record.output
    now = now_ms()
    with ws.store.fast_write() as tx:
        tx.insert(step_runs, row)
        for blob in stored:
            tx.execute(
                _BLOB_SQL,
                {
                    "sha256": blob.sha256,
                    "size": blob.size,
                    "uri": blob.uri,
                    "media_type": blob.media_type,
                    "created_at": now,
                },
            )
        here = ("step_run", record.id)
        links = [(("pipeline_run", run_id), here, "step")]
        links += [(("step_run", src), here, relation) for src, relation in record.edges]
        links += [(("dataset_version", d), here, "input") for d in record.datasets]
        # Two arguments of equal content are one input blob: one edge.
        shas = sorted({b.sha256 for b in record.blobs})
        links += [(("artifact", sha), here, "input") for sha in shas]
        if output is not None:
            links.append((here, ("artifact", output["sha256"]), "output"))
        links += [(here, ("run", r), "started") for r in record.started]
        for (src_kind, src_id), (dst_kind, dst_id), relation in links:
            tx.insert(
                lineage_edges,
                {
                    "src_kind": src_kind,
                    "src_id": src_id,
                    "dst_kind": dst_kind,
                    "dst_id": dst_id,
                    "relation": relation,
                    "created_at": now,
                },
            )
        audit.record_fast(
            tx,
            ws.user,
            "step_run.end",
            "step_run",
            record.id,
            after={
                "pipeline_run": run_id,
                "step": record.step,
                "status": record.status,
                "cache_hit": record.cache_hit,
                "attempts": record.attempts,
                "output": output["sha256"] if output else None,
            },
        )


def _output_blob(output: dict[str, Any]) -> Blob:
    """The blob a stored output names (the materializer's JSON); InvalidInput if malformed."""
    fields = {"sha256": str, "size": int, "media_type": str, "kind": str}
    for name, kind in fields.items():
        value = output.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidInput(
                f"record.output.{name} must be a {kind.__name__}, not {value!r}",
                details={"field": f"record.output.{name}"},
            )
    return Blob(output["sha256"], output["size"], "", output["media_type"])


def _text(value: str, name: str) -> None:
    if not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string", details={"field": name})


def _held(ws: Workspace, blob: Blob, step: str) -> Blob:
    """The blob with the artifact store's URI; NotFound when the store does not hold it."""
    artifacts = ws.artifacts
    if not artifacts.exists(blob.sha256):
        raise NotFound(
            f"the blob {blob.sha256} of step {step!r} is not in the artifact store",
            hint="upload its content first",
        )
    return Blob(blob.sha256, blob.size, artifacts.uri_of(blob.sha256), blob.media_type)


def _intact(ws: Workspace, sha256: str) -> bool:
    """Whether a stored output is unchanged; a corrupted one is moved aside."""
    from cauce.artifacts import sha256_file
    from cauce.store import now_ms

    store = ws.artifacts
    try:
        if store.is_local:
            path = store.path_of(sha256)
            if sha256_file(Path(path))[0] == sha256:
                return True
        else:
            store.read_bytes(sha256)  # verified while read
            return True
    except OSError:  # missing or unreadable: run the step
        return False
    except CauceError as exc:
        if exc.code != "integrity-error":
            return False
    # Should the move fail, the file stays and loading the rerun's output reports it.
    path = store.path_of(sha256)
    with contextlib.suppress(OSError):
        store.fs.mv(path, f"{path}.corrupt-{now_ms()}")
    return False


def _keyed(conn: Connection, key: str) -> tuple[str | None, list[str]]:
    """The run with ``key`` that succeeded, if any, and the ids of those still RUNNING."""
    from sqlalchemy import select

    from cauce.store.schema import pipeline_runs

    p = pipeline_runs.c
    rows = conn.execute(
        select(p.id, p.status).where(p.idempotency_key == key).order_by(p.start_time, p.id)
    ).all()
    done = next((r.id for r in rows if r.status == SUCCEEDED), None)
    return done, [r.id for r in rows if r.status == RUNNING]


def _abandon(conn: Connection, ws: Workspace, run_id: str, resumed_by: str) -> None:
    """Mark a RUNNING run whose runner died FAILED, in the caller's transaction."""
    from sqlalchemy import update

    from cauce.lineage import audit
    from cauce.store import now_ms
    from cauce.store.schema import pipeline_runs

    error = f"abandoned: its runner stopped before the run ended; {resumed_by}"
    conn.execute(
        update(pipeline_runs)
        .where(pipeline_runs.c.id == run_id, pipeline_runs.c.status == RUNNING)
        .values(status=FAILED, end_time=now_ms(), error=error)
    )
    audit.record(
        conn,
        ws.user,
        "pipeline_run.end",
        "pipeline_run",
        run_id,
        before={"status": RUNNING},
        after={"status": FAILED, "error": error},
    )


def _pipeline_id(conn: Connection, name: str) -> str | None:
    from sqlalchemy import select

    from cauce.store.schema import pipelines

    found = conn.execute(select(pipelines.c.id).where(pipelines.c.name == name)).first()
    return None if found is None else str(found.id)


def _ensure_pipeline(conn: Connection, user: str, name: str, source: str) -> str:
    from cauce.lineage import audit
    from cauce.store import insert_ignore, new_id, now_ms
    from cauce.store.schema import pipelines

    found = _pipeline_id(conn, name)
    if found is not None:
        return found
    pipeline_id = new_id()
    row = {"id": pipeline_id, "name": name, "source": source, "created_at": now_ms()}
    if not insert_ignore(conn, pipelines, row):  # created meanwhile by a concurrent first run
        return _pipeline_id(conn, name) or ""
    audit.record(conn, user, "pipeline.create", "pipeline", pipeline_id, after={"name": name})
    return pipeline_id


_CACHED_SQL = (
    "SELECT id, output, stats FROM step_runs WHERE cache_key = :key AND status = :status "
    "ORDER BY end_time DESC LIMIT 1"
)
# The stats of the step's earlier runs (that ran, not cache hits), newest first.
_HISTORY_SQL = (
    "SELECT s.stats FROM step_runs s JOIN pipeline_runs p ON p.id = s.pipeline_run_id "
    "WHERE p.pipeline_id = :pipeline AND s.step = :step AND s.status = :status "
    "AND s.cache_hit = :hit AND s.pipeline_run_id != :run ORDER BY s.start_time DESC LIMIT 30"
)
_BLOB_SQL = (
    "INSERT INTO artifacts (sha256, size, uri, media_type, created_at) "
    "VALUES (:sha256, :size, :uri, :media_type, :created_at) ON CONFLICT DO NOTHING"
)


def _json(value: Any) -> Any:
    """A JSON column as read through the DB-API driver (text on SQLite, parsed on PostgreSQL)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value
