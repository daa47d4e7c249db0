"""MLflow-format model folders in Cauce's registry.

A folder the MLflow client logged (``MLmodel`` beside the model's files) becomes a Cauce model by
gaining a ``cauce-model.yaml`` whose flavor is ``mlflow`` (see ``registry/flavors/mlflow.py``):
then it registers, loads and serves like any other version, every file checked against its
sha256. The folder's own files are not touched.

Example::

    version = register_logged_model("m-0f3a...", "churn")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cauce.errors import InvalidInput, NotFound
from cauce.registry.flavors.mlflow import MLMODEL, spec_from_mlmodel
from cauce.registry.format import SPEC_FILE
from cauce.registry.models import ModelVersion, create_version, register
from cauce.store.schema import artifacts, model_versions
from cauce.tracking.artifacts import attach, list_artifacts
from cauce.tracking.logged_models import (
    LoggedModelInfo,
    attach_files,
    find_logged_model,
    get_logged_model,
    logged_model_files,
)
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.artifacts import Blob

EXTERNAL = "mlflow.model.isExternal"  # MLflow's tag: a logged model whose files it does not hold


def package_files(
    files: dict[str, str], *, where: str, workspace: Workspace | None = None
) -> tuple[dict[str, str], Blob | None]:
    """The files of a model folder (path → sha256) with a ``cauce-model.yaml``: the one it has,
    or a new one written for its ``MLmodel`` (then also returned, stored, as a Blob)."""
    import yaml

    ws = workspace or current()
    if SPEC_FILE in files:
        return files, None
    if MLMODEL not in files:
        raise NotFound(f"{where} has neither {SPEC_FILE} nor an MLflow {MLMODEL} file")
    sizes = file_sizes(files.values(), workspace=ws)
    requirements: list[str] = []
    if "requirements.txt" in files:
        text = ws.artifacts.read_bytes(files["requirements.txt"]).decode("utf-8", "replace")
        requirements = [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))
        ]
    spec = spec_from_mlmodel(
        ws.artifacts.read_bytes(files[MLMODEL]),
        {path: (sha, sizes.get(sha, 0)) for path, sha in files.items()},
        requirements,
    )
    data = yaml.safe_dump(spec, sort_keys=False).encode()
    blob = ws.artifacts.put_bytes(data, media_type="application/yaml")
    return {**files, SPEC_FILE: blob.sha256}, blob


def package_run_model(run_id: str, path: str, *, workspace: Workspace | None = None) -> None:
    """Make the run's MLflow model folder ``path`` a Cauce model (``runs:/<run id>/<path>``
    then loads and registers); a folder that is one already is left as it is."""
    ws = workspace or current()
    prefix = path.rstrip("/") + "/"
    files = {
        e.path[len(prefix) :]: e.sha256
        for e in list_artifacts(run_id, path, workspace=ws)
        if e.path.startswith(prefix)
    }
    _, blob = package_files(files, where=f"runs:/{run_id}/{path}", workspace=ws)
    if blob is not None:
        with ws.store.write() as conn:
            attach(conn, ws, run_id, [(prefix + SPEC_FILE, blob)])


def register_run_model(
    run_id: str,
    path: str,
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Register the run's model folder ``path`` (Cauce's format or MLflow's) as a new version."""
    ws = workspace or current()
    package_run_model(run_id, path, workspace=ws)
    return register(
        f"runs:/{run_id}/{path}", name, description=description, tags=tags, workspace=ws
    )


def register_logged_model(
    model_id: str,
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Register a logged model (MLflow's ``models:/<model id>``) as a new version of ``name``."""
    ws = workspace or current()
    model = get_logged_model(model_id, workspace=ws)
    if model.tags.get(EXTERNAL) == "true":
        raise InvalidInput(
            f"logged model {model_id} is external (its files live outside the tracking server): "
            "there is nothing to load, so it cannot be a model version",
            details={"field": "model_id"},
        )
    if model.run_id is not None:
        return register_run_model(
            model.run_id,
            model.artifact_path,
            name,
            description=description,
            tags=tags,
            workspace=ws,
        )
    files, blob = package_files(
        logged_model_files(model_id, workspace=ws), where=f"models:/{model_id}", workspace=ws
    )
    with ws.store.write() as conn:
        if blob is not None:
            attach_files(conn, ws, model_id, [(SPEC_FILE, blob)])
        return create_version(
            conn,
            ws,
            name,
            files,
            run_id=None,
            artifact_path=model.artifact_path,
            description=description,
            tags=tags,
        )


def package_logged_model(model_id: str, *, workspace: Workspace | None = None) -> None:
    """Once a run's logged model is complete: when it is an MLflow folder, make it a Cauce model
    too, so that ``runs:/<run id>/<path>`` loads in Cauce from then on."""
    ws = workspace or current()
    model = get_logged_model(model_id, workspace=ws)
    if model.tags.get(EXTERNAL) == "true":
        return  # its files live elsewhere (mlflow.set_active_model): a record, nothing to load
    if model.run_id is not None and MLMODEL in logged_model_files(model_id, workspace=ws):
        package_run_model(model.run_id, model.artifact_path, workspace=ws)


def version_origin(
    version: ModelVersion, *, workspace: Workspace | None = None
) -> tuple[str | None, LoggedModelInfo | None]:
    """The run folder a version was registered from, and the logged model of that folder."""
    ws = workspace or current()
    with ws.store.read() as conn:
        path: str | None = conn.execute(
            select(model_versions.c.artifact_path).where(model_versions.c.id == version.id)
        ).scalar()
    return path, find_logged_model(version.run_id, path, workspace=ws)


def file_sizes(shas: Iterable[str], *, workspace: Workspace | None = None) -> dict[str, int]:
    """The size of each stored blob: sha256 → bytes."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(
            select(artifacts.c.sha256, artifacts.c.size).where(
                artifacts.c.sha256.in_(sorted(set(shas)))
            )
        ).all()
    return {r.sha256: int(r.size) for r in rows}
