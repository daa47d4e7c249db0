"""Experiments: named groups of runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from cauce.errors import AlreadyExists, NotFound
from cauce.lineage import audit
from cauce.lineage.tags import delete_tag, read_tags, set_tags
from cauce.operations import operation
from cauce.store import FastTransaction, insert_ignore, new_id, now_ms
from cauce.store.schema import experiment_tags, experiments
from cauce.tracking.entities import Experiment
from cauce.validation import MAX_TAG_VALUE, check_name, check_tags, check_text
from cauce.workspace import Workspace, current


def _experiment(row: Any, tags: dict[str, str] | None = None) -> Experiment:
    return Experiment(
        experiment_id=row.id,
        name=row.name,
        lifecycle_stage=row.lifecycle_stage,
        creation_time=row.created_at,
        last_update_time=row.updated_at,
        description=row.description,
        tags=tags or {},
    )


@operation("POST /experiments")
def create_experiment(
    name: str,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    workspace: Workspace | None = None,
) -> Experiment:
    """Create an experiment, with its tags; its name must be new."""
    ws = workspace or current()
    check_name(name, "experiment name")
    checked = check_tags(tags or {})
    with ws.store.write() as conn:
        experiment_id = _insert(conn, ws, name, description)
        if experiment_id is None:
            raise AlreadyExists(f"experiment {name!r} already exists")
        set_tags(
            conn,
            ws.user,
            experiment_tags,
            ("experiment_id", experiment_id),
            "experiment",
            checked,
        )
        return _read(conn, _row(conn, experiment_id))


@operation("GET /experiments/{experiment}")
def get_experiment(experiment: str, *, workspace: Workspace | None = None) -> Experiment:
    """An experiment by id or by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _read(conn, require_experiment(conn, experiment))


@operation("GET /experiments")
def list_experiments(
    *, include_deleted: bool = False, workspace: Workspace | None = None
) -> list[Experiment]:
    """Every experiment, oldest first."""
    ws = workspace or current()
    query = select(experiments).order_by(experiments.c.created_at, experiments.c.name)
    if not include_deleted:
        query = query.where(experiments.c.lifecycle_stage == "active")
    with ws.store.read() as conn:
        rows = conn.execute(query).all()
        tags: dict[str, dict[str, str]] = {row.id: {} for row in rows}
        t = experiment_tags.c
        for experiment_id, key, value in conn.execute(select(t.experiment_id, t.key, t.value)):
            if experiment_id in tags:
                tags[experiment_id][key] = value
    return [_experiment(row, tags[row.id]) for row in rows]


@operation("POST /experiments/{experiment}/tags")
def set_experiment_tags(
    experiment: str, values: Mapping[str, Any], *, workspace: Workspace | None = None
) -> Experiment:
    """Set tags on an experiment (by id or name), replacing earlier values; audited."""
    checked = check_tags(values)
    ws = workspace or current()
    with ws.store.write() as conn:
        row = require_experiment(conn, experiment)
        set_tags(conn, ws.user, experiment_tags, ("experiment_id", row.id), "experiment", checked)
        return _read(conn, row)


@operation("DELETE /experiments/{experiment}/tags")
def delete_experiment_tag(
    experiment: str, key: str, *, workspace: Workspace | None = None
) -> Experiment:
    """Remove a tag from an experiment (by id or name)."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = require_experiment(conn, experiment)
        owner = ("experiment_id", row.id)
        what = f"experiment {row.name!r}"
        delete_tag(conn, ws.user, experiment_tags, owner, "experiment", key, what)
        return _read(conn, row)


@operation("DELETE /experiments/{experiment}")
def delete_experiment(experiment: str, *, workspace: Workspace | None = None) -> Experiment:
    """Mark an experiment deleted; its runs stay readable."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = require_experiment(conn, experiment)
        conn.execute(
            experiments.update()
            .where(experiments.c.id == row.id)
            .values(lifecycle_stage="deleted", updated_at=now_ms())
        )
        audit.record(
            conn,
            ws.user,
            "experiment.delete",
            "experiment",
            row.id,
            before={"lifecycle_stage": row.lifecycle_stage},
            after={"lifecycle_stage": "deleted"},
        )
        return _read(conn, _row(conn, row.id))


@operation("POST /experiments/{experiment}/restore", idempotent=True)
def restore_experiment(experiment: str, *, workspace: Workspace | None = None) -> Experiment:
    """Bring a deleted experiment back."""
    return _change(experiment, "experiment.restore", workspace, lifecycle_stage="active")


@operation("PATCH /experiments/{experiment}")
def rename_experiment(
    experiment: str, new_name: str, *, workspace: Workspace | None = None
) -> Experiment:
    """Give an experiment a new name, which must be free."""
    check_name(new_name, "experiment name")
    ws = workspace or current()
    with ws.store.read() as conn:
        if _find(conn, new_name) is not None:
            raise AlreadyExists(f"experiment {new_name!r} already exists")
    return _change(experiment, "experiment.rename", ws, name=new_name)


@operation("PUT /experiments/{experiment}/description")
def set_experiment_description(
    experiment: str, description: str | None, *, workspace: Workspace | None = None
) -> Experiment:
    """Say what an experiment is for (None: nothing)."""
    if description is not None:
        check_text(description, MAX_TAG_VALUE, "description")
    return _change(experiment, "experiment.describe", workspace, description=description)


def _change(experiment: str, action: str, workspace: Workspace | None, **values: Any) -> Experiment:
    ws = workspace or current()
    with ws.store.write() as conn:
        row = require_experiment(conn, experiment)
        conn.execute(
            experiments.update()
            .where(experiments.c.id == row.id)
            .values(**values, updated_at=now_ms())
        )
        audit.record(
            conn,
            ws.user,
            action,
            "experiment",
            row.id,
            before={k: getattr(row, k) for k in values},
            after=values,
        )
        return _read(conn, _row(conn, row.id))


_SQL_FIND = "SELECT id, lifecycle_stage FROM experiments WHERE name = :name"


def resolve_experiment_id(tx: FastTransaction, ws: Workspace, name: str) -> str:
    """The id of the named experiment, created (audited) when missing, inside the caller's
    hot-path transaction (:meth:`~cauce.store.Store.fast_write`): a run and the experiment its
    first run creates commit together."""
    found = tx.fetchone(_SQL_FIND, {"name": name})
    if found is None:
        check_name(name, "experiment name")
        values = _new(name, None)
        # Ignored when a concurrent first run created the experiment at the same moment.
        tx.insert(experiments, values, ignore=True)
        found = tx.fetchone(_SQL_FIND, {"name": name})
        assert found is not None
        if found[0] == values["id"]:  # else another writer's row is the one to use
            audit.record_fast(
                tx, ws.user, "experiment.create", "experiment", values["id"], after=values
            )
    if found[1] != "active":
        raise NotFound(f"experiment {name!r} is deleted", hint="use another experiment name")
    return str(found[0])


def _insert(conn: Connection, ws: Workspace, name: str, description: str | None) -> str | None:
    """Insert an experiment and audit it; None when one with that name exists already.

    ``ON CONFLICT DO NOTHING`` rather than look-then-insert: on PostgreSQL two transactions that
    both find no row would otherwise both insert, and the second would fail on the unique name.
    """
    values = _new(name, description)
    if not insert_ignore(conn, experiments, values):
        return None
    audit.record(conn, ws.user, "experiment.create", "experiment", values["id"], after=values)
    return str(values["id"])


def _new(name: str, description: str | None) -> dict[str, Any]:
    now = now_ms()
    return {
        "id": new_id(),
        "name": name,
        "description": description,
        "lifecycle_stage": "active",
        "created_at": now,
        "updated_at": now,
    }


def _read(conn: Connection, row: Any) -> Experiment:
    """An experiment's row with its tags."""
    return _experiment(row, read_tags(conn, experiment_tags, ("experiment_id", row.id)))


def require_experiment(conn: Connection, experiment: str) -> Any:
    """An experiment's row, by id or by name, in the caller's transaction."""
    row = _row(conn, experiment) or _find(conn, experiment)
    if row is None:
        raise NotFound(f"experiment {experiment!r} does not exist")
    return row


def _row(conn: Connection, experiment_id: str) -> Any:
    return conn.execute(select(experiments).where(experiments.c.id == experiment_id)).first()


def _find(conn: Connection, name: str) -> Any:
    return conn.execute(select(experiments).where(experiments.c.name == name)).first()
