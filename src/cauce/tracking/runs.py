"""Runs and what they log, addressed by explicit run id.

This is the layer under the fluent API (``cauce.start_run`` …), the CLI and the server.
"""

from __future__ import annotations

import functools
import json
import math
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, func, select

from cauce.errors import BackendError, Conflict, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import FastTransaction, new_id, now_ms, upsert
from cauce.store.schema import (
    dataset_versions,
    datasets,
    metrics,
    params,
    run_dataset_references,
    run_inputs,
    run_tags,
    runs,
)
from cauce.tracking.entities import (
    RUN_STATUSES,
    TERMINAL_STATUSES,
    DatasetInput,
    DatasetReference,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
)
from cauce.tracking.environment import SourceInfo, source_info
from cauce.tracking.experiments import resolve_experiment_id
from cauce.validation import (
    MAX_PARAM_VALUE,
    check_int,
    check_key,
    check_metric_value,
    check_name,
    check_tags,
    check_text,
)
from cauce.workspace import Workspace, current

# The start and end of a run are on the store's hot path (see Store.fast_write).
_RUN_COLUMNS = tuple(c.name for c in runs.columns)
_SQL_RUN = "SELECT {} FROM runs WHERE id = :id".format(", ".join(f'"{c}"' for c in _RUN_COLUMNS))
_SQL_END_RUN = (
    "UPDATE runs SET status = :status, end_time = :end_time, error = :error WHERE id = :id"
)
_SQL_EXPERIMENT_BY_ID = "SELECT id, lifecycle_stage FROM experiments WHERE id = :id"


# -- runs -----------------------------------------------------------------------------------


_started: ContextVar[list[str] | None] = ContextVar("cauce_runs_started", default=None)


@contextmanager
def recording_runs() -> Iterator[list[str]]:
    """Collect the ids of the runs :func:`create_run` starts inside the block (a pipeline step
    records them so that lineage links the step run to the runs it started)."""
    started: list[str] = []
    token = _started.set(started)
    try:
        yield started
    finally:
        _started.reset(token)


def note_started(run_id: str) -> None:
    """Count ``run_id`` among the runs started inside :func:`recording_runs` (once). Called on
    the caller's side too: through a server, :func:`create_run` runs out of this process."""
    started = _started.get()
    if started is not None and run_id not in started:
        started.append(run_id)


@operation("POST /runs", caller_side={"source": source_info})
def create_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    experiment_id: str | None = None,
    source: SourceInfo | None = None,
    workspace: Workspace | None = None,
) -> RunInfo:
    """Start a new run (status RUNNING) in the named experiment, created if missing.

    ``experiment_id`` picks an existing experiment by id instead of by name; ``source`` is the
    code and environment the run executes (default: this process's).
    """
    ws = workspace or current()
    experiment = experiment or ws.settings.experiment
    if run_name is not None:
        check_name(run_name, "run name")
    checked_tags = check_tags(tags or {})
    source = source or source_info()
    run_id = new_id()
    row = {
        "id": run_id,
        "name": run_name or f"run-{secrets.token_hex(3)}",
        "status": "RUNNING",
        "start_time": now_ms(),
        "end_time": None,
        "user": ws.user,
        "parent_run_id": parent_run_id,
        "source_commit": source.commit,
        "source_dirty": source.dirty,
        "entry_point": source.entry_point,
        "python_version": source.python_version,
        "packages_hash": source.packages_hash,
        "error": None,
        "lifecycle_stage": "active",
    }
    with ws.store.fast_write() as tx:
        if experiment_id is None:
            # A new experiment is created with its first run, in this transaction.
            experiment_id = resolve_experiment_id(tx, ws, experiment)
        else:
            found = tx.fetchone(_SQL_EXPERIMENT_BY_ID, {"id": experiment_id})
            if found is None:
                raise NotFound(f"experiment {experiment_id!r} does not exist")
            if found[1] != "active":
                raise NotFound(f"experiment {experiment!r} is deleted", hint="use another one")
        row["experiment_id"] = experiment_id
        if parent_run_id is not None and tx.fetchone(_SQL_RUN, {"id": parent_run_id}) is None:
            raise NotFound(f"run {parent_run_id!r} does not exist")
        tx.insert(runs, row)
        for key, value in checked_tags.items():
            tx.insert(run_tags, {"run_id": run_id, "key": key, "value": value})
        audit.record_fast(
            tx,
            ws.user,
            "run.create",
            "run",
            run_id,
            after={
                "experiment_id": experiment_id,
                "name": row["name"],
                "status": "RUNNING",
                "parent_run_id": parent_run_id,
            },
        )
    note_started(run_id)
    return _run_info(row)


@operation("POST /runs/{run_id}/end")
def end_run(
    run_id: str,
    status: str = "FINISHED",
    *,
    error: str | None = None,
    workspace: Workspace | None = None,
) -> RunInfo:
    """Set a run's final status (FINISHED, FAILED or KILLED) and end time."""
    ws = workspace or current()
    if status not in TERMINAL_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(TERMINAL_STATUSES)}, not {status!r}")
    _check_run_id(run_id)
    with ws.store.fast_write() as tx:
        found = tx.fetchone(_SQL_RUN, {"id": run_id})
        if found is None:
            raise NotFound(f"run {run_id!r} does not exist")
        row = dict(zip(_RUN_COLUMNS, found, strict=True))
        before = {"status": row["status"], "end_time": row["end_time"]}
        row.update(status=status, end_time=now_ms(), error=error)
        tx.execute(_SQL_END_RUN, row)
        audit.record_fast(
            tx,
            ws.user,
            "run.end",
            "run",
            run_id,
            before=before,
            after={"status": status, "end_time": row["end_time"], "error": error},
        )
    return _run_info(row)


@operation("POST /runs/{run_id}/status")
def set_run_status(
    run_id: str,
    status: str,
    *,
    tags: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> None:
    """Reopen or mark a run (RUNNING resumes a finished run, as ``start_run(run_id=)`` does).

    ``tags`` are set in the same transaction.
    """
    ws = workspace or current()
    if status not in RUN_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
    checked = check_tags(tags or {})
    with ws.store.write() as conn:
        before = _require_run(conn, run_id)
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(status=status, end_time=None if status == "RUNNING" else before.end_time)
        )
        audit.record(
            conn,
            ws.user,
            "run.status",
            "run",
            run_id,
            before={"status": before.status},
            after={"status": status},
        )
        if checked:
            _write_tags(conn, ws, run_id, checked)


@operation("GET /runs/{run_id}")
def get_run(run_id: str, *, workspace: Workspace | None = None) -> Run:
    """A run with the latest value of each metric, its params, tags and inputs."""
    ws = workspace or current()
    _check_run_id(run_id)
    with ws.store.read() as conn:
        row = _require_run(conn, run_id)
        return load_runs(conn, [row])[0]


def load_runs(conn: Connection, rows: list[Any]) -> list[Run]:
    """Build Run objects for run rows, fetching their data in a few batched queries."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    ranked = (
        select(
            metrics.c.run_id,
            metrics.c.key,
            metrics.c.value,
            metrics.c.is_nan,
            func.row_number()
            .over(
                partition_by=(metrics.c.run_id, metrics.c.key),
                order_by=(metrics.c.step.desc(), metrics.c.timestamp.desc(), metrics.c.id.desc()),
            )
            .label("rank"),
        )
        .where(metrics.c.run_id.in_(ids))
        .subquery()
    )
    # Rows fetched at once and unpacked by position: a run may hold thousands of params and
    # tags, and SQLAlchemy's row-by-row iteration and named access were most of a get_run.
    latest: dict[str, dict[str, float]] = {i: {} for i in ids}
    query = select(ranked.c.run_id, ranked.c.key, ranked.c.value, ranked.c.is_nan)
    for run_id, key, value, is_nan in conn.execute(query.where(ranked.c.rank == 1)).all():
        latest[run_id][key] = math.nan if is_nan else value
    run_params: dict[str, dict[str, str]] = {i: {} for i in ids}
    query = select(params.c.run_id, params.c.key, params.c.value)
    for run_id, key, value in conn.execute(query.where(params.c.run_id.in_(ids))).all():
        run_params[run_id][key] = value
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    query = select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value)
    for run_id, key, value in conn.execute(query.where(run_tags.c.run_id.in_(ids))).all():
        tags[run_id][key] = value
    inputs: dict[str, list[DatasetInput]] = {i: [] for i in ids}
    query = (
        select(
            run_inputs.c.run_id,
            run_inputs.c.context,
            datasets.c.name,
            dataset_versions.c.version,
            dataset_versions.c.id,
            dataset_versions.c.content_hash,
            dataset_versions.c.row_count,
        )
        .join(dataset_versions, dataset_versions.c.id == run_inputs.c.dataset_version_id)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(run_inputs.c.run_id.in_(ids))
        .order_by(datasets.c.name, dataset_versions.c.version)
    )
    for i in conn.execute(query):
        inputs[i.run_id].append(
            DatasetInput(i.name, i.version, i.id, i.context, i.content_hash, i.row_count)
        )
    references: dict[str, list[DatasetReference]] = {i: [] for i in ids}
    d = run_dataset_references.c
    query = select(
        d.run_id, d.name, d.digest, d.context, d.source_type, d.source, d.schema, d.profile
    ).where(d.run_id.in_(ids))
    for run_id, *fields in conn.execute(query.order_by(d.name, d.created_at)).all():
        references[run_id].append(DatasetReference(*fields))
    return [
        Run(
            info=_run_info(r._mapping),
            data=RunData(metrics=latest[r.id], params=run_params[r.id], tags=tags[r.id]),
            inputs=RunInputs(dataset_inputs=inputs[r.id], dataset_references=references[r.id]),
        )
        for r in rows
    ]


# -- metrics (the hot path) -----------------------------------------------------------------


@operation("POST /runs/{run_id}/metric")
def log_metric(
    run_id: str,
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Log one metric value; it is durable when this returns."""
    ws = workspace or current()
    _insert_metrics(ws, run_id, _metric_rows(run_id, ((key, value),), step, timestamp))


@operation("POST /runs/{run_id}/metrics")
def log_metrics(
    run_id: str,
    values: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Log several metric values in one write; all or none are stored."""
    ws = workspace or current()
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"metrics must be a mapping of key to value, got {type(values).__name__}"
        )
    _insert_metrics(ws, run_id, _metric_rows(run_id, values.items(), step, timestamp))


@operation("POST /runs/{run_id}/metric-values")
def log_metric_values(
    run_id: str,
    values: list[tuple[str, float, int | None, int | None]],
    *,
    workspace: Workspace | None = None,
) -> None:
    """Log ``(key, value, step, timestamp)`` values, each with its own step and time, in one
    write; all or none are stored."""
    ws = workspace or current()
    rows = []
    for key, value, step, timestamp in values:
        rows.extend(_metric_rows(run_id, ((key, value),), step, timestamp))
    if rows:
        _insert_metrics(ws, run_id, rows)


def _metric_rows(
    run_id: str, values: Iterable[tuple[Any, Any]], step: int | None, timestamp: int | None
) -> list[tuple[Any, ...]]:
    """Checked rows in the metrics table's column order (see Store.insert_fast)."""
    step = 0 if step is None else check_int(step, "step")
    timestamp = now_ms() if timestamp is None else check_int(timestamp, "timestamp")
    rows = []
    for key, value in values:
        if type(key) is str:
            _checked_metric_key(key)
        else:
            check_key(key, "metric key")
        number = value if type(value) is float else check_metric_value(key, value)
        if number != number:  # NaN: SQLite would store NULL, so keep a flag and a 0
            rows.append((run_id, key, 0.0, True, step, timestamp))
        else:
            rows.append((run_id, key, number, False, step, timestamp))
    return rows


@functools.lru_cache(maxsize=65536)
def _checked_metric_key(key: str) -> str:
    # The same keys are logged at every step: check each once per process.
    return check_key(key, "metric key")


def _insert_metrics(ws: Workspace, run_id: str, rows: list[tuple[Any, ...]]) -> None:
    if not isinstance(run_id, str):
        raise InvalidInput(f"run id must be a string, got {run_id!r}")
    store = ws.store
    try:
        store.insert_fast(metrics, rows)
    except BackendError:
        raise
    except Exception as exc:
        if store.is_integrity_error(exc):
            raise NotFound(f"run {run_id!r} does not exist") from None
        raise store.translate(exc) from exc


@operation("GET /runs/{run_id}/metric-history")
def get_metric_history(
    run_id: str, key: str, *, workspace: Workspace | None = None
) -> list[Metric]:
    """Every logged value of a metric, by step then time."""
    ws = workspace or current()
    check_key(key, "metric key")
    query = (
        select(
            metrics.c.key, metrics.c.value, metrics.c.is_nan, metrics.c.step, metrics.c.timestamp
        )
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
    )
    with ws.store.read() as conn:
        _require_run(conn, run_id)
        return [
            Metric(m.key, math.nan if m.is_nan else m.value, m.timestamp, m.step)
            for m in conn.execute(query)
        ]


# -- params and tags ------------------------------------------------------------------------


@operation("POST /runs/{run_id}/params")
def log_params(
    run_id: str, values: Mapping[str, Any], *, workspace: Workspace | None = None
) -> None:
    """Log parameters; a param keeps its first value (logging a different one is a Conflict)."""
    ws = workspace or current()
    if not isinstance(values, Mapping):
        raise InvalidInput(f"params must be a mapping of key to value, got {type(values).__name__}")
    checked = {
        check_key(k, "param key"): check_text(v, MAX_PARAM_VALUE, f"param {k!r}")
        for k, v in values.items()
    }
    if not checked:
        return
    _check_run_id(run_id)
    with ws.store.fast_write() as tx:  # a hot path of the MLflow client: plain SQL
        existing = _run_values(tx, "params", run_id, list(checked))
        changed = {
            k: (existing[k], v) for k, v in checked.items() if k in existing and existing[k] != v
        }
        if changed:
            listing = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise Conflict(
                f"params of run {run_id} cannot change once logged ({listing})",
                hint="log the new value under another key, or start a new run",
            )
        new = {k: v for k, v in checked.items() if k not in existing}
        if new:
            for k, v in new.items():
                tx.insert(params, {"run_id": run_id, "key": k, "value": v})
            audit.record_fast(tx, ws.user, "run.params", "run", run_id, after=new)


def _run_values(tx: FastTransaction, table: str, run_id: str, keys: list[str]) -> dict[str, str]:
    """The run's stored values of ``keys`` in ``table`` (params or run_tags), in one query that
    also finds the run: NotFound when it does not exist."""
    marks = ", ".join(f":k{i}" for i in range(len(keys)))
    sql = (
        f"SELECT r.id, v.key, v.value FROM runs r LEFT JOIN {table} v "
        f"ON v.run_id = r.id AND v.key IN ({marks}) WHERE r.id = :run"
    )
    rows = tx.fetchall(sql, {"run": run_id, **{f"k{i}": k for i, k in enumerate(keys)}})
    if not rows:
        raise NotFound(f"run {run_id!r} does not exist")
    return {key: value for _, key, value in rows if key is not None}


@operation("POST /runs/{run_id}/tags")
def set_tags(run_id: str, values: Mapping[str, Any], *, workspace: Workspace | None = None) -> None:
    """Set tags on a run, replacing earlier values; the change is audited."""
    ws = workspace or current()
    checked = check_tags(values)
    if not checked:
        return
    _check_run_id(run_id)
    if not ws.store.is_sqlite:
        _set_tags_in_one_statement(ws, run_id, checked)
        return
    with ws.store.fast_write() as tx:  # a hot path of the MLflow client: plain SQL
        before = _run_values(tx, "run_tags", run_id, list(checked))
        for k, v in checked.items():
            tx.execute(_UPSERT_TAG_SQL, {"run_id": run_id, "key": k, "value": v})
        audit.record_fast(tx, ws.user, "run.tag", "run", run_id, before=before, after=checked)


def _set_tags_in_one_statement(ws: Workspace, run_id: str, checked: dict[str, str]) -> None:
    """``set_tags`` on PostgreSQL: the earlier values, the upsert and the audit row in one
    statement (one round trip instead of five; its parts see one snapshot, so ``before`` holds
    the values the upsert replaces). A missing run fails the upsert's foreign key."""
    keys = ", ".join(f":k{i}" for i in range(len(checked)))
    rows = ", ".join(f"(:run, :k{i}, :v{i})" for i in range(len(checked)))
    sql = (
        "WITH before AS (SELECT key, value FROM run_tags "
        f"WHERE run_id = :run AND key IN ({keys})), "
        f"written AS (INSERT INTO run_tags (run_id, key, value) VALUES {rows} "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value RETURNING 1) "
        "INSERT INTO audit_events (at, actor, action, entity_kind, entity_id, before, after) "
        "SELECT :at, :actor, 'run.tag', 'run', :run, "
        "COALESCE((SELECT json_object_agg(key, value) FROM before), '{}'::json), "
        "CAST(:after AS json) FROM (SELECT count(*) FROM written) AS done"
    )
    params: dict[str, Any] = {"run": run_id, "at": now_ms(), "actor": ws.user}
    params["after"] = json.dumps(checked)
    for i, (k, v) in enumerate(checked.items()):
        params[f"k{i}"], params[f"v{i}"] = k, v
    try:
        ws.store.statement_fast(sql, params)
    except BackendError as exc:
        if exc.__cause__ is not None and ws.store.is_integrity_error(exc.__cause__):
            raise NotFound(f"run {run_id!r} does not exist") from None
        raise


# The same statement on SQLite and PostgreSQL.
_UPSERT_TAG_SQL = (
    "INSERT INTO run_tags (run_id, key, value) VALUES (:run_id, :key, :value) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)


def _write_tags(conn: Connection, ws: Workspace, run_id: str, checked: dict[str, str]) -> None:
    """Upsert a run's tags and audit the change (inside the caller's transaction)."""
    before = {
        t.key: t.value
        for t in conn.execute(
            select(run_tags.c.key, run_tags.c.value).where(
                run_tags.c.run_id == run_id, run_tags.c.key.in_(list(checked))
            )
        )
    }
    for k, v in checked.items():
        upsert(conn, run_tags, {"run_id": run_id, "key": k, "value": v}, ("run_id", "key"))
    audit.record(conn, ws.user, "run.tag", "run", run_id, before=before, after=checked)


@operation("DELETE /runs/{run_id}/tags")
def delete_tag(run_id: str, key: str, *, workspace: Workspace | None = None) -> None:
    """Remove a tag from a run."""
    ws = workspace or current()
    with ws.store.write() as conn:
        _require_run(conn, run_id)
        old = conn.execute(
            select(run_tags.c.value).where(run_tags.c.run_id == run_id, run_tags.c.key == key)
        ).scalar()
        if old is None:
            raise NotFound(f"run {run_id} has no tag {key!r}")
        conn.execute(run_tags.delete().where(run_tags.c.run_id == run_id, run_tags.c.key == key))
        audit.record(conn, ws.user, "run.untag", "run", run_id, before={key: old}, after=None)


# -- inputs ---------------------------------------------------------------------------------


def log_input(
    run_id: str,
    dataset_version: Any,
    context: str = "training",
    *,
    workspace: Workspace | None = None,
) -> None:
    """Record that the run used a dataset version (an edge dataset version → run)."""
    # A DatasetVersion travels as its name@version, which the store resolves again: a client
    # names the version, it does not vouch for its id.
    ref = getattr(dataset_version, "ref", dataset_version)
    record_input(run_id, ref, context, workspace=workspace)


@operation("POST /runs/{run_id}/inputs", idempotent=True)
def record_input(
    run_id: str,
    dataset_version: str,
    context: str = "training",
    *,
    workspace: Workspace | None = None,
) -> None:
    """Record that the run used the dataset version ``name@version`` (``name``: the newest)."""
    from cauce.data.assets import resolve_version
    from cauce.lineage.graph import add_edge
    from cauce.store import insert_ignore

    ws = workspace or current()
    check_key(context, "input context")
    version = resolve_version(dataset_version, workspace=ws)
    with ws.store.write() as conn:
        _require_run(conn, run_id)
        inserted = insert_ignore(
            conn,
            run_inputs,
            {"run_id": run_id, "dataset_version_id": version.id, "context": context},
        )
        add_edge(conn, ("dataset_version", version.id), ("run", run_id), "input")
        if inserted:
            audit.record(
                conn,
                ws.user,
                "run.input",
                "run",
                run_id,
                after={"dataset": version.name, "version": version.version, "context": context},
            )


# What the client may say of data it read (MLflow's own limits, where it has them).
_REFERENCE_LIMITS = {
    "name": 500,
    "digest": 64,
    "source_type": 64,
    "source": 65_535,
    "schema": 1_048_576,
    "profile": 16_384,
}


@operation("POST /runs/{run_id}/dataset-references", idempotent=True)
def record_dataset_references(
    run_id: str, references: list[DatasetReference], *, workspace: Workspace | None = None
) -> None:
    """Record data the run read that Cauce does not hold, as its client describes it (an MLflow
    dataset). One described again in the same context is kept as it was first."""
    from cauce.store import insert_ignore

    for index, one in enumerate(references):
        _check_reference(one, f"references.{index}")
    ws = workspace or current()
    with ws.store.write() as conn:
        _require_run(conn, run_id)
        for one in references:
            row = {**vars(one), "run_id": run_id, "created_at": now_ms()}
            if insert_ignore(conn, run_dataset_references, row):
                audit.record(
                    conn,
                    ws.user,
                    "run.input",
                    "run",
                    run_id,
                    after={"dataset": one.name, "digest": one.digest, "context": one.context},
                )


def _check_reference(one: DatasetReference, where: str) -> None:
    try:
        check_key(one.context, f"{where}.context")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, details={"field": f"{where}.context"}) from None
    for name, limit in _REFERENCE_LIMITS.items():
        value = getattr(one, name)
        required = name in ("name", "digest", "source_type", "source")
        if value is None and not required:
            continue
        if not isinstance(value, str) or (required and not value) or len(value) > limit:
            raise InvalidInput(
                f"{where}.{name}: a text of {'1' if required else '0'} to {limit} characters",
                details={"field": f"{where}.{name}"},
            )


# -- lifecycle ------------------------------------------------------------------------------


@operation("DELETE /runs/{run_id}")
def delete_run(run_id: str, *, workspace: Workspace | None = None) -> None:
    """Mark a run deleted: searches leave it out, ``get_run`` still reads it."""
    _set_lifecycle(run_id, "deleted", workspace)


@operation("POST /runs/{run_id}/restore", idempotent=True)
def restore_run(run_id: str, *, workspace: Workspace | None = None) -> None:
    """Bring a deleted run back."""
    _set_lifecycle(run_id, "active", workspace)


@operation("PATCH /runs/{run_id}", idempotent=True)
def rename_run(run_id: str, run_name: str, *, workspace: Workspace | None = None) -> None:
    """Give a run a new name; the change is audited."""
    ws = workspace or current()
    check_name(run_name, "run name")
    with ws.store.write() as conn:
        before = _require_run(conn, run_id)
        conn.execute(runs.update().where(runs.c.id == run_id).values(name=run_name))
        audit.record(
            conn,
            ws.user,
            "run.rename",
            "run",
            run_id,
            before={"name": before.name},
            after={"name": run_name},
        )


def _set_lifecycle(run_id: str, stage: str, workspace: Workspace | None) -> None:
    ws = workspace or current()
    with ws.store.write() as conn:
        before = _require_run(conn, run_id)
        conn.execute(runs.update().where(runs.c.id == run_id).values(lifecycle_stage=stage))
        audit.record(
            conn,
            ws.user,
            "run.delete" if stage == "deleted" else "run.restore",
            "run",
            run_id,
            before={"lifecycle_stage": before.lifecycle_stage},
            after={"lifecycle_stage": stage},
        )


# -- helpers --------------------------------------------------------------------------------


def _check_run_id(run_id: Any) -> None:
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput(f"run id must be a non-empty string, got {run_id!r}")


def _require_run(conn: Connection, run_id: str) -> Any:
    _check_run_id(run_id)
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return row


def _run_info(row: Mapping[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=row["id"],
        experiment_id=row["experiment_id"],
        run_name=row["name"],
        status=row["status"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        user_id=row["user"],
        lifecycle_stage=row["lifecycle_stage"],
        parent_run_id=row["parent_run_id"],
        source_commit=row["source_commit"],
        source_dirty=row["source_dirty"],
        entry_point=row["entry_point"],
        python_version=row["python_version"],
        packages_hash=row["packages_hash"],
        error=row["error"],
    )
