"""Logged models: MLflow 3's name for a model folder with an id, logged by a run or alone.

A run's logged model keeps its files as the run's artifacts under ``artifact_path`` (the model's
name, as ``cauce.log_model`` does), so Cauce's run views, ``runs:/<run id>/<path>`` URIs and
lineage see them; a logged model without a run keeps the sha256 of each file in its row. Tags,
params and metrics logged on the model itself live in its row too.

Example::

    model = create_logged_model(experiment_id, "model", run_id=run.info.run_id)
    set_logged_model_status(model.model_id, "READY")
"""

from __future__ import annotations

import math
import posixpath
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from cauce.artifacts.records import record_blob
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.store import new_id, now_ms
from cauce.store.schema import experiments, logged_models, run_artifacts, runs
from cauce.validation import MAX_PARAM_VALUE, MAX_TAG_VALUE, check_key, check_name, check_text
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.artifacts import Blob

STATUSES = ("PENDING", "READY", "FAILED")


@dataclass(frozen=True)
class LoggedModelInfo:
    """A logged model: where its files are, its status, and what was logged on it."""

    model_id: str
    experiment_id: str
    run_id: str | None
    name: str
    artifact_path: str
    status: str
    model_type: str | None
    step: int
    user: str
    created_at: int
    updated_at: int
    lifecycle_stage: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


def create_logged_model(
    experiment_id: str,
    name: str | None = None,
    *,
    run_id: str | None = None,
    model_type: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> LoggedModelInfo:
    """Start a logged model (status PENDING) in an experiment, logged by ``run_id`` if given.

    Its files go under the run's ``name/`` folder, or ``name-<id>/`` when the run already has
    something there.
    """
    ws = workspace or current()
    name = name or f"model-{secrets.token_hex(3)}"
    check_name(name, "logged model name")
    checked_params = _checked(params or {}, MAX_PARAM_VALUE, "param")
    checked_tags = _checked(tags or {}, MAX_TAG_VALUE, "tag")
    model_id = f"m-{new_id()}"
    now = now_ms()
    with ws.store.write() as conn:
        found = conn.execute(
            select(experiments.c.lifecycle_stage).where(experiments.c.id == experiment_id)
        ).first()
        if found is None:
            raise NotFound(f"experiment {experiment_id!r} does not exist")
        if found.lifecycle_stage != "active":
            raise NotFound(f"experiment {experiment_id!r} is deleted")
        if run_id is None:
            path = f"models/{model_id}"
        else:
            if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                raise NotFound(f"run {run_id!r} does not exist")
            path = name if _free(conn, run_id, name) else f"{name}-{model_id[2:10]}"
        values: dict[str, Any] = {
            "id": model_id,
            "experiment_id": experiment_id,
            "run_id": run_id,
            "name": name,
            "artifact_path": path,
            "status": "PENDING",
            "model_type": model_type,
            "step": 0,
            "user": ws.user,
            "tags": checked_tags,
            "params": checked_params,
            "metrics": [],
            "files": {},
            "lifecycle_stage": "active",
            "created_at": now,
            "updated_at": now,
        }
        conn.execute(logged_models.insert().values(values))
        audit.record(
            conn,
            ws.user,
            "logged_model.create",
            "logged_model",
            model_id,
            after={"name": name, "run_id": run_id, "artifact_path": path},
        )
        return _info(_require(conn, model_id))


def get_logged_model(
    model_id: str, *, include_deleted: bool = False, workspace: Workspace | None = None
) -> LoggedModelInfo:
    """A logged model by id."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _require(conn, model_id)
    if row.lifecycle_stage != "active" and not include_deleted:
        raise NotFound(f"logged model {model_id!r} is deleted")
    return _info(row)


def search_logged_models(
    experiment_ids: Sequence[str] | None = None,
    *,
    run_id: str | None = None,
    max_results: int = 100,
    offset: int = 0,
    workspace: Workspace | None = None,
) -> list[LoggedModelInfo]:
    """Active logged models of the experiments (None: all), or of one run, newest first."""
    ws = workspace or current()
    query = select(logged_models).where(logged_models.c.lifecycle_stage == "active")
    if experiment_ids is not None:
        query = query.where(logged_models.c.experiment_id.in_(list(experiment_ids)))
    if run_id is not None:
        query = query.where(logged_models.c.run_id == run_id)
    query = query.order_by(logged_models.c.created_at.desc(), logged_models.c.id)
    with ws.store.read() as conn:
        rows = conn.execute(query.offset(offset).limit(max_results)).all()
    return [_info(r) for r in rows]


def set_logged_model_status(
    model_id: str, status: str, *, workspace: Workspace | None = None
) -> LoggedModelInfo:
    """Mark a logged model READY (its files are complete) or FAILED."""
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return _update(model_id, "logged_model.status", workspace, status=status)


def set_logged_model_step(
    model_id: str, run_id: str, step: int, *, workspace: Workspace | None = None
) -> LoggedModelInfo:
    """Record the step of ``run_id`` at which the model was logged (MLflow's run outputs)."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _require(conn, model_id)
    if row.run_id != run_id:
        raise InvalidInput(f"logged model {model_id} was not logged by run {run_id}")
    return _update(model_id, "logged_model.step", ws, step=int(step))


def set_logged_model_tags(
    model_id: str, tags: Mapping[str, Any], *, workspace: Workspace | None = None
) -> LoggedModelInfo:
    """Set tags on a logged model, replacing earlier values."""
    checked = _checked(tags, MAX_TAG_VALUE, "tag")
    return _update(model_id, "logged_model.tag", workspace, merge=("tags", checked))


def delete_logged_model_tag(
    model_id: str, key: str, *, workspace: Workspace | None = None
) -> LoggedModelInfo:
    """Remove a tag from a logged model."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require(conn, model_id, lock=True)
        tags = dict(row.tags)
        if key not in tags:
            raise NotFound(f"logged model {model_id} has no tag {key!r}")
        old = tags.pop(key)
        conn.execute(
            logged_models.update()
            .where(logged_models.c.id == model_id)
            .values(tags=tags, updated_at=now_ms())
        )
        audit.record(
            conn, ws.user, "logged_model.untag", "logged_model", model_id, before={key: old}
        )
        return _info(_require(conn, model_id))


def log_logged_model_params(
    model_id: str, params: Mapping[str, Any], *, workspace: Workspace | None = None
) -> LoggedModelInfo:
    """Log params on a logged model."""
    checked = _checked(params, MAX_PARAM_VALUE, "param")
    return _update(model_id, "logged_model.params", workspace, merge=("params", checked))


def log_logged_model_metrics(
    model_id: str, values: Sequence[Mapping[str, Any]], *, workspace: Workspace | None = None
) -> None:
    """Record metric values (``key``, ``value``, ``step``, ``timestamp``, ``run_id``) measured on
    a logged model; a value recorded twice is kept once."""
    ws = workspace or current()
    new = []
    for value in values:
        number = float(value["value"])
        new.append(
            {
                "key": check_key(value["key"], "metric key"),
                "value": None if math.isnan(number) else number,
                "step": int(value.get("step") or 0),
                "timestamp": int(value.get("timestamp") or now_ms()),
                "run_id": value.get("run_id"),
            }
        )
    if not new:
        return
    with ws.store.write() as conn:
        row = _require(conn, model_id, lock=True)
        kept = list(row.metrics)
        added = [m for m in new if m not in kept]
        if not added:
            return
        conn.execute(
            logged_models.update()
            .where(logged_models.c.id == model_id)
            .values(metrics=kept + added, updated_at=now_ms())
        )
        audit.record(
            conn, ws.user, "logged_model.metrics", "logged_model", model_id, after={"n": len(added)}
        )


def delete_logged_model(model_id: str, *, workspace: Workspace | None = None) -> None:
    """Mark a logged model deleted; its files stay (a registered version may use them)."""
    _update(model_id, "logged_model.delete", workspace, lifecycle_stage="deleted")


def attach_files(
    conn: Connection, ws: Workspace, model_id: str, files: list[tuple[str, Blob]]
) -> None:
    """Record files of a logged model that no run logged (inside the caller's transaction)."""
    row = _require(conn, model_id, lock=True)
    if row.run_id is not None:
        raise InvalidInput(f"logged model {model_id} keeps its files with run {row.run_id}")
    stored = dict(row.files)
    for path, blob in files:
        record_blob(conn, blob)
        stored[path] = blob.sha256
    conn.execute(
        logged_models.update()
        .where(logged_models.c.id == model_id)
        .values(files=stored, updated_at=now_ms())
    )
    audit.record(
        conn,
        ws.user,
        "logged_model.files",
        "logged_model",
        model_id,
        after={path: blob.sha256 for path, blob in files},
    )


def logged_model_files(model_id: str, *, workspace: Workspace | None = None) -> dict[str, str]:
    """Every file of a logged model: its path inside the model folder → sha256."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _require(conn, model_id)
        if row.run_id is None:
            return dict(row.files)
        prefix = row.artifact_path + "/"
        found = conn.execute(
            select(run_artifacts.c.path, run_artifacts.c.sha256).where(
                run_artifacts.c.run_id == row.run_id,
                run_artifacts.c.path.startswith(prefix, autoescape=True),
            )
        ).all()
    return {r.path[len(prefix) :]: r.sha256 for r in found}


def find_logged_model(
    run_id: str | None, artifact_path: str | None, *, workspace: Workspace | None = None
) -> LoggedModelInfo | None:
    """The logged model whose files are the run's ``artifact_path`` folder (or, without a run,
    whose path is ``artifact_path``), if any."""
    ws = workspace or current()
    if artifact_path is None:
        return None
    query = select(logged_models).where(logged_models.c.artifact_path == artifact_path)
    if run_id is None:
        query = query.where(logged_models.c.run_id.is_(None))
    else:
        query = query.where(logged_models.c.run_id == run_id)
    with ws.store.read() as conn:
        row = conn.execute(query.order_by(logged_models.c.created_at.desc())).first()
    return None if row is None else _info(row)


# -- helpers --------------------------------------------------------------------------------


def _free(conn: Connection, run_id: str, path: str) -> bool:
    """Whether neither a logged model nor a file of the run uses the folder ``path`` yet."""
    taken = conn.execute(
        select(logged_models.c.id).where(
            logged_models.c.run_id == run_id, logged_models.c.artifact_path == path
        )
    ).first()
    if taken is not None:
        return False
    inside = conn.execute(
        select(run_artifacts.c.path).where(
            run_artifacts.c.run_id == run_id,
            run_artifacts.c.path.startswith(posixpath.join(path, ""), autoescape=True),
        )
    ).first()
    return inside is None


def _checked(values: Mapping[str, Any], limit: int, what: str) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"{what}s must be a mapping of key to value, got {type(values).__name__}"
        )
    return {
        check_key(k, f"{what} key"): check_text(v, limit, f"{what} {k!r}")
        for k, v in values.items()
    }


def _update(
    model_id: str,
    action: str,
    workspace: Workspace | None,
    *,
    merge: tuple[str, dict[str, str]] | None = None,
    **values: Any,
) -> LoggedModelInfo:
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require(conn, model_id, lock=True)
        before = {k: getattr(row, k) for k in values}
        if merge is not None:
            column, new = merge
            before[column] = {k: row._mapping[column].get(k) for k in new}
            values[column] = {**row._mapping[column], **new}
        conn.execute(
            logged_models.update()
            .where(logged_models.c.id == model_id)
            .values(**values, updated_at=now_ms())
        )
        after = dict(values) if merge is None else {**values, merge[0]: merge[1]}
        audit.record(conn, ws.user, action, "logged_model", model_id, before=before, after=after)
        return _info(_require(conn, model_id))


def _require(conn: Connection, model_id: str, *, lock: bool = False) -> Any:
    if not isinstance(model_id, str) or not model_id:
        raise InvalidInput(f"logged model id must be a non-empty string, got {model_id!r}")
    query = select(logged_models).where(logged_models.c.id == model_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"logged model {model_id!r} does not exist")
    return row


def _info(row: Any) -> LoggedModelInfo:
    return LoggedModelInfo(
        model_id=row.id,
        experiment_id=row.experiment_id,
        run_id=row.run_id,
        name=row.name,
        artifact_path=row.artifact_path,
        status=row.status,
        model_type=row.model_type,
        step=row.step,
        user=row.user,
        created_at=row.created_at,
        updated_at=row.updated_at,
        lifecycle_stage=row.lifecycle_stage,
        tags=dict(row.tags),
        params=dict(row.params),
        metrics=[
            {**m, "value": math.nan if m["value"] is None else m["value"]} for m in row.metrics
        ],
    )


def run_outputs(
    run_ids: Sequence[str], *, workspace: Workspace | None = None
) -> dict[str, list[tuple[str, int]]]:
    """The logged models each run logged, oldest first: run id → [(model id, step)]."""
    ws = workspace or current()
    out: dict[str, list[tuple[str, int]]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    query = (
        select(logged_models.c.run_id, logged_models.c.id, logged_models.c.step)
        .where(
            logged_models.c.run_id.in_(list(run_ids)),
            logged_models.c.lifecycle_stage == "active",
        )
        .order_by(logged_models.c.created_at, logged_models.c.id)
    )
    with ws.store.read() as conn:
        for row in conn.execute(query):
            out[row.run_id].append((row.id, row.step))
    return out
