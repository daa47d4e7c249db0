"""Registered models, their immutable versions, movable aliases, tags and descriptions.

Example::

    cauce.models.set_alias("churn", "champion", 3)
    model = cauce.models.load("models:/churn@champion")
    model.predict(frame)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from cauce.errors import Conflict, IntegrityError, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.lineage.tags import delete_tag, read_tags, set_tags
from cauce.operations import operation
from cauce.registry.format import SPEC_FILE, LoadedModel, load_folder
from cauce.registry.uris import ModelRef, RunModelRef, parse
from cauce.store import insert_ignore, new_id, now_ms, upsert
from cauce.store.schema import (
    model_alias_history,
    model_aliases,
    model_tags,
    model_version_tags,
    model_versions,
    models,
    run_artifacts,
    runs,
)
from cauce.validation import check_alias, check_name, check_tags
from cauce.workspace import Workspace, current

__all__ = [
    "ModelVersion",
    "RegisteredModel",
    "alias_history",
    "create_model",
    "create_version",
    "delete_alias",
    "delete_model_tag",
    "delete_version_tag",
    "get_model",
    "get_version",
    "latest_version",
    "list_models",
    "load",
    "register",
    "resolve",
    "set_alias",
    "set_model_tag",
    "set_version_tag",
    "update_model",
    "update_version",
    "version_by_alias",
    "versions",
]


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model."""

    name: str
    version: int
    id: str
    run_id: str | None
    flavor: str
    signature: dict[str, Any] | None
    files: dict[str, str]
    spec_sha256: str
    description: str | None
    created_at: int
    user: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        """``models:/name/version``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**asdict(self), "uri": self.uri}


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its versions are listed by :func:`versions`."""

    name: str
    id: str
    description: str | None
    created_at: int
    updated_at: int
    latest_version: int | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


# -- models ---------------------------------------------------------------------------------


@operation("POST /models")
def create_model(
    name: str,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    *,
    workspace: Workspace | None = None,
) -> RegisteredModel:
    """Register a new model name."""
    ws = workspace or current()
    check_name(name, "model name")
    with ws.store.write() as conn:
        # Inserted or not in one statement: of two concurrent creations, one gets a Conflict.
        if _insert_model(conn, ws, name, description) is None:
            raise Conflict(f"model {name!r} already exists")
        if tags:
            owner = ("model_id", _model_row(conn, name).id)
            set_tags(conn, ws.user, model_tags, owner, "model", check_tags(tags))
        return _registered_model(conn, _model_row(conn, name))


@operation("GET /models/{name}")
def get_model(name: str, *, workspace: Workspace | None = None) -> RegisteredModel:
    """A registered model with its tags, aliases and newest version number."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _registered_model(conn, _require_model(conn, name))


@operation("GET /models")
def list_models(*, workspace: Workspace | None = None) -> list[RegisteredModel]:
    """Every registered model, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(select(models).order_by(models.c.name)).all()
        return [_registered_model(conn, row) for row in rows]


@operation("PATCH /models/{name}", idempotent=True)
def update_model(
    name: str, *, description: str, workspace: Workspace | None = None
) -> RegisteredModel:
    """Change a model's description."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_model(conn, name)
        conn.execute(
            models.update()
            .where(models.c.id == row.id)
            .values(description=description, updated_at=now_ms())
        )
        audit.record(
            conn,
            ws.user,
            "model.update",
            "model",
            row.id,
            before={"description": row.description},
            after={"description": description},
        )
        return _registered_model(conn, _require_model(conn, name))


@operation("POST /models/{name}/tags", idempotent=True)
def set_model_tag(name: str, key: str, value: Any, *, workspace: Workspace | None = None) -> None:
    """Set a tag on a registered model."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_model(conn, name)
        set_tags(conn, ws.user, model_tags, ("model_id", row.id), "model", check_tags({key: value}))


@operation("DELETE /models/{name}/tags")
def delete_model_tag(name: str, key: str, *, workspace: Workspace | None = None) -> None:
    """Remove a tag from a registered model."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_model(conn, name)
        owner = ("model_id", row.id)
        delete_tag(conn, ws.user, model_tags, owner, "model", key, f"model {name!r}")


# -- versions -------------------------------------------------------------------------------


@operation("POST /models/{name}/versions")
def register(
    uri: str,
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Register a model logged by a run (``runs:/<id>/model``) as a new version of ``name``."""
    ws = workspace or current()
    ref = parse(uri)
    if not isinstance(ref, RunModelRef):
        raise InvalidInput(f"register a run's model (runs:/RUN_ID/PATH), not {uri!r}")
    with ws.store.write() as conn:
        files = _run_model_files(conn, ref)
        return create_version(
            conn,
            ws,
            name,
            files,
            run_id=ref.run_id,
            artifact_path=ref.path,
            description=description,
            tags=tags,
        )


def create_version(
    conn: Connection,
    ws: Workspace,
    name: str,
    files: dict[str, str],
    *,
    run_id: str | None,
    artifact_path: str | None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Add a version (inside the caller's transaction), creating the model when it is new."""
    import yaml

    check_name(name, "model name")
    spec_sha = files.get(SPEC_FILE)
    if spec_sha is None:
        raise NotFound(f"{artifact_path or 'the model'} has no {SPEC_FILE}")
    spec = yaml.safe_load(ws.artifacts.read_bytes(spec_sha))
    missing = [p for p, meta in spec["files"].items() if files.get(p) != meta["sha256"]]
    if missing:
        raise NotFound(f"model files {', '.join(missing)} are missing or differ from {SPEC_FILE}")

    model_id = _lock_model(conn, ws, name)
    number = (
        conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model_id)
        ).scalar()
        or 0
    ) + 1
    values = {
        "id": new_id(),
        "model_id": model_id,
        "version": number,
        "run_id": run_id,
        "artifact_path": artifact_path,
        "flavor": spec["flavor"],
        "spec_sha256": spec_sha,
        "signature": spec.get("signature"),
        "files": files,
        "description": description,
        "created_at": now_ms(),
        "user": ws.user,
    }
    conn.execute(model_versions.insert().values(values))
    conn.execute(models.update().where(models.c.id == model_id).values(updated_at=now_ms()))
    if run_id is not None:
        add_edge(conn, ("run", run_id), ("model_version", values["id"]), "produced")
    # The manifest alone, which names every file's sha256: files any model may share (a
    # requirements.txt) would otherwise join unrelated runs upstream of this version.
    add_edge(conn, ("artifact", spec_sha), ("model_version", values["id"]), "packaged_as")
    audit.record(
        conn,
        ws.user,
        "model_version.create",
        "model_version",
        values["id"],
        after={
            "model": name,
            "version": number,
            "run_id": run_id,
            "flavor": spec["flavor"],
            "spec_sha256": spec_sha,
        },
    )
    if tags:
        owner = ("model_version_id", values["id"])
        set_tags(conn, ws.user, model_version_tags, owner, "model_version", check_tags(tags))
    return _version(
        conn,
        name,
        conn.execute(select(model_versions).where(model_versions.c.id == values["id"])).one(),
    )


@operation("GET /models/{name}/versions/{version}")
def get_version(name: str, version: int, *, workspace: Workspace | None = None) -> ModelVersion:
    """One version of a model."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _version(conn, name, _require_version(conn, name, version))


@operation("GET /models/{name}/versions")
def versions(name: str, *, workspace: Workspace | None = None) -> list[ModelVersion]:
    """Every version of a model, oldest first."""
    ws = workspace or current()
    with ws.store.read() as conn:
        model = _require_model(conn, name)
        rows = conn.execute(
            select(model_versions)
            .where(model_versions.c.model_id == model.id)
            .order_by(model_versions.c.version)
        ).all()
        return [_version(conn, name, row) for row in rows]


def resolve(uri: str, *, workspace: Workspace | None = None) -> ModelVersion:
    """The version a ``models:/`` URI points at (a number, an alias, or the newest)."""
    ref = parse(uri)
    if not isinstance(ref, ModelRef):
        raise InvalidInput(f"{uri!r} names a run's model, not a registered version")
    if ref.version is not None:
        return get_version(ref.name, ref.version, workspace=workspace)
    if ref.alias is not None:
        return version_by_alias(ref.name, ref.alias, workspace=workspace)
    return latest_version(ref.name, workspace=workspace)


@operation("GET /models/{name}/aliases/{alias}")
def version_by_alias(name: str, alias: str, *, workspace: Workspace | None = None) -> ModelVersion:
    """The version an alias of the model points at."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _version(conn, name, _resolve_row(conn, ModelRef(name, alias=alias)))


@operation("GET /models/{name}/latest")
def latest_version(name: str, *, workspace: Workspace | None = None) -> ModelVersion:
    """The model's newest version."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _version(conn, name, _resolve_row(conn, ModelRef(name)))


@operation("PATCH /models/{name}/versions/{version}", idempotent=True)
def update_version(
    name: str, version: int, *, description: str, workspace: Workspace | None = None
) -> ModelVersion:
    """Change a version's description (its files and signature never change)."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_version(conn, name, version)
        conn.execute(
            model_versions.update()
            .where(model_versions.c.id == row.id)
            .values(description=description)
        )
        audit.record(
            conn,
            ws.user,
            "model_version.update",
            "model_version",
            row.id,
            before={"description": row.description},
            after={"description": description},
        )
        return _version(conn, name, _require_version(conn, name, version))


@operation("POST /models/{name}/versions/{version}/tags", idempotent=True)
def set_version_tag(
    name: str, version: int, key: str, value: Any, *, workspace: Workspace | None = None
) -> None:
    """Set a tag on a model version."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_version(conn, name, version)
        owner = ("model_version_id", row.id)
        checked = check_tags({key: value})
        set_tags(conn, ws.user, model_version_tags, owner, "model_version", checked)


@operation("DELETE /models/{name}/versions/{version}/tags")
def delete_version_tag(
    name: str, version: int, key: str, *, workspace: Workspace | None = None
) -> None:
    """Remove a tag from a model version."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_version(conn, name, version)
        owner = ("model_version_id", row.id)
        what = f"{name} v{version}"
        delete_tag(conn, ws.user, model_version_tags, owner, "model_version", key, what)


# -- aliases --------------------------------------------------------------------------------


@operation("PUT /models/{name}/aliases/{alias}")
def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    reason: str | None = None,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Point ``alias`` at a version; the move is kept in the alias history and audited (with
    ``reason`` and ``actor`` when automation moves it)."""
    ws = workspace or current()
    check_alias(alias)
    with ws.store.write() as conn:
        target = move_alias(conn, name, alias, version, actor=actor or ws.user, reason=reason)
        return _version(conn, name, target)


def move_alias(
    conn: Connection,
    name: str,
    alias: str,
    version: int,
    *,
    actor: str,
    reason: str | None = None,
    if_changed: bool = False,
) -> Any:
    """:func:`set_alias` inside the caller's transaction (a rollout's promotion moves the alias
    in the transaction that ends the rollout); returns the version's row. With ``if_changed``
    an alias that already points at the version is left as it is (no history, no audit)."""
    check_alias(alias)
    target = _require_version(conn, name, version)
    old = _alias_version(conn, target.model_id, alias)
    if if_changed and old == target.version:
        return target
    upsert(
        conn,
        model_aliases,
        {
            "model_id": target.model_id,
            "alias": alias,
            "model_version_id": target.id,
            "updated_at": now_ms(),
        },
        ("model_id", "alias"),
    )
    conn.execute(
        model_alias_history.insert().values(
            model_id=target.model_id,
            alias=alias,
            from_version=old,
            to_version=target.version,
            at=now_ms(),
            user=actor,
        )
    )
    after: dict[str, Any] = {"alias": alias, "version": target.version}
    if reason is not None:
        after["reason"] = reason
    audit.record(
        conn,
        actor,
        "model.alias.set",
        "model",
        target.model_id,
        before={"alias": alias, "version": old},
        after=after,
    )
    return target


@operation("DELETE /models/{name}/aliases/{alias}", idempotent=False)
def delete_alias(name: str, alias: str, *, workspace: Workspace | None = None) -> None:
    """Remove an alias; the history keeps where it pointed."""
    ws = workspace or current()
    with ws.store.write() as conn:
        model = _require_model(conn, name)
        old = _alias_version(conn, model.id, alias)
        if old is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        conn.execute(
            model_aliases.delete().where(
                model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
            )
        )
        conn.execute(
            model_alias_history.insert().values(
                model_id=model.id,
                alias=alias,
                from_version=old,
                to_version=None,
                at=now_ms(),
                user=ws.user,
            )
        )
        audit.record(
            conn,
            ws.user,
            "model.alias.delete",
            "model",
            model.id,
            before={"alias": alias, "version": old},
            after=None,
        )


@operation("GET /models/{name}/alias-history")
def alias_history(
    name: str, alias: str | None = None, *, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """Every move of the model's aliases, oldest first."""
    ws = workspace or current()
    h = model_alias_history.c
    with ws.store.read() as conn:
        model = _require_model(conn, name)
        query = select(model_alias_history).where(h.model_id == model.id).order_by(h.id)
        if alias:
            query = query.where(h.alias == alias)
        return [
            {
                "alias": r.alias,
                "from_version": r.from_version,
                "to_version": r.to_version,
                "at": r.at,
                "user": r.user,
            }
            for r in conn.execute(query)
        ]


# -- loading --------------------------------------------------------------------------------


def load(uri: str, *, workspace: Workspace | None = None) -> LoadedModel:
    """Load a model by URI; every file is verified against its sha256 first.

    Accepts ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME`` (newest) and
    ``runs:/RUN_ID/PATH``.
    """
    ws = workspace or current()
    ref = parse(uri)
    if isinstance(ref, ModelRef):
        files = resolve(uri, workspace=ws).files
    else:
        files = run_model_files(ref, workspace=ws)
    folder = _materialize(ws, files, uri)
    try:
        return load_folder(folder, uri, spec_sha256=files[SPEC_FILE])
    except IntegrityError as exc:
        raise IntegrityError(
            exc.message,
            hint=f"the local copy was modified; delete {folder} to download it again",
            details=exc.details,
        ) from None


def run_model_files(ref: RunModelRef, *, workspace: Workspace | None = None) -> dict[str, str]:
    """The files of the model a run logged at ``ref.path``: relative path → sha256."""
    from cauce.tracking.artifacts import list_artifacts

    prefix = ref.path.rstrip("/") + "/"
    files = {
        entry.path[len(prefix) :]: entry.sha256
        for entry in list_artifacts(ref.run_id, ref.path, workspace=workspace)
        if entry.path.startswith(prefix)
    }
    if SPEC_FILE not in files:
        raise NotFound(f"run {ref.run_id} has no model at {ref.path!r}")
    return files


def _materialize(ws: Workspace, files: dict[str, str], uri: str) -> Path:
    """Download a model's files into the local cache (once; verified on every load)."""
    cache = ws.cache_dir / "models" / files[SPEC_FILE]
    if cache.is_dir():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".download-"))
    try:
        for rel, sha in files.items():
            try:
                ws.artifacts.get_file(sha, staging / rel)
            except (IntegrityError, NotFound) as exc:
                # Name the model file, not only the content-addressed blob behind it.
                raise type(exc)(
                    f"model file {rel} of {uri}: {exc.message}", hint=exc.hint, details=exc.details
                ) from None
        try:
            os.rename(staging, cache)
        except OSError:
            if not cache.is_dir():  # another process finished first otherwise
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


# -- helpers --------------------------------------------------------------------------------


def _insert_model(
    conn: Connection, ws: Workspace, name: str, description: str | None
) -> str | None:
    """Create model ``name`` (audited) and return its id; None when the name is taken."""
    model_id = new_id()
    now = now_ms()
    values = {
        "id": model_id,
        "name": name,
        "description": description,
        "created_at": now,
        "updated_at": now,
    }
    if not insert_ignore(conn, models, values):
        return None
    audit.record(conn, ws.user, "model.create", "model", model_id, after={"name": name})
    return model_id


def _lock_model(conn: Connection, ws: Workspace, name: str) -> str:
    """The id of model ``name``, created when missing, locked until the transaction ends.

    Concurrent registrations of one model take turns here, so that each one reads the newest
    version number before it adds the next (on PostgreSQL they would otherwise collide on it).
    SQLite needs no row lock: its write transactions already run one at a time.
    """
    model_id = _insert_model(conn, ws, name, None)
    if model_id is not None:
        return model_id
    locked: str = conn.execute(
        select(models.c.id).where(models.c.name == name).with_for_update()
    ).scalar_one()
    return locked


def _model_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(models).where(models.c.name == name)).first()


def _require_model(conn: Connection, name: str) -> Any:
    row = _model_row(conn, name)
    if row is None:
        raise NotFound(f"model {name!r} does not exist")
    return row


def _require_version(conn: Connection, name: str, version: Any) -> Any:
    if isinstance(version, bool) or not isinstance(version, int):
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        else:
            raise InvalidInput(f"model version must be a number, got {version!r}")
    model = _require_model(conn, name)
    row = conn.execute(
        select(model_versions).where(
            model_versions.c.model_id == model.id, model_versions.c.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    return row


def _resolve_row(conn: Connection, ref: ModelRef) -> Any:
    model = _require_model(conn, ref.name)
    query = select(model_versions).where(model_versions.c.model_id == model.id)
    if ref.version is not None:
        return _require_version(conn, ref.name, ref.version)
    if ref.alias is not None:
        query = query.join(
            model_aliases, model_aliases.c.model_version_id == model_versions.c.id
        ).where(model_aliases.c.alias == ref.alias)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
        return row
    row = conn.execute(query.order_by(model_versions.c.version.desc()).limit(1)).first()
    if row is None:
        raise NotFound(f"model {ref.name!r} has no versions")
    return row


def _alias_version(conn: Connection, model_id: str, alias: str) -> int | None:
    version: int | None = conn.execute(
        select(model_versions.c.version)
        .join(model_aliases, model_aliases.c.model_version_id == model_versions.c.id)
        .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
    ).scalar()
    return version


def _run_model_files(conn: Connection, ref: RunModelRef) -> dict[str, str]:
    if conn.execute(select(runs.c.id).where(runs.c.id == ref.run_id)).first() is None:
        raise NotFound(f"run {ref.run_id!r} does not exist")
    prefix = ref.path.rstrip("/") + "/"
    rows = conn.execute(
        select(run_artifacts.c.path, run_artifacts.c.sha256).where(
            run_artifacts.c.run_id == ref.run_id,
            run_artifacts.c.path.startswith(prefix, autoescape=True),
        )
    ).all()
    files = {r.path[len(prefix) :]: r.sha256 for r in rows}
    if SPEC_FILE not in files:
        raise NotFound(f"run {ref.run_id} has no model at {ref.path!r}")
    return files


def _registered_model(conn: Connection, row: Any) -> RegisteredModel:
    latest = conn.execute(
        select(func.max(model_versions.c.version)).where(model_versions.c.model_id == row.id)
    ).scalar()
    tags = read_tags(conn, model_tags, ("model_id", row.id))
    aliases = {
        r.alias: r.version
        for r in conn.execute(
            select(model_aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.model_version_id)
            .where(model_aliases.c.model_id == row.id)
            .order_by(model_aliases.c.alias)
        )
    }
    return RegisteredModel(
        name=row.name,
        id=row.id,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=latest,
        tags=tags,
        aliases=aliases,
    )


def _version(conn: Connection, name: str, row: Any) -> ModelVersion:
    tags = read_tags(conn, model_version_tags, ("model_version_id", row.id))
    aliases = [
        r.alias
        for r in conn.execute(
            select(model_aliases.c.alias)
            .where(model_aliases.c.model_version_id == row.id)
            .order_by(model_aliases.c.alias)
        )
    ]
    return ModelVersion(
        name=name,
        version=row.version,
        id=row.id,
        run_id=row.run_id,
        flavor=row.flavor,
        signature=row.signature,
        files=dict(row.files),
        spec_sha256=row.spec_sha256,
        description=row.description,
        created_at=row.created_at,
        user=row.user,
        tags=tags,
        aliases=aliases,
    )
