"""``log_model``: save a model in the Cauce format as run artifacts, optionally registering it;
``register_pretrained``: save and register a model that no run trained (a packaged model).

Both save and upload the model's files where they are called (through ``ws.artifacts``, local
or on a server); the operations ``record_model`` and ``record_pretrained`` then record what was
uploaded, in one transaction.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.artifacts import Blob
from cauce.artifacts.records import record_blob
from cauce.errors import InvalidInput, NotFound
from cauce.operations import operation
from cauce.registry.format import SPEC_FILE, save_model
from cauce.registry.models import ModelVersion, create_version
from cauce.tracking import fluent
from cauce.tracking.artifacts import ArtifactEntry, attach, check_artifact_path
from cauce.tracking.runs import get_run
from cauce.validation import check_name
from cauce.workspace import Workspace, current


@dataclass(frozen=True)
class LoggedModel:
    """A model stored with a run but not registered: load it with ``runs:/<run id>/<path>``."""

    run_id: str
    artifact_path: str
    flavor: str
    signature: dict[str, Any] | None

    @property
    def uri(self) -> str:
        """``runs:/<run id>/<artifact path>``."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


def log_model(
    model: Any,
    name: str = "model",
    *,
    registered_model: str | None = None,
    input_example: Any = None,
    flavor: str | None = None,
    requirements: list[str] | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> ModelVersion | LoggedModel:
    """Store a model with the active run under ``name``; with ``registered_model``, register it.

    Supports scikit-learn estimators (saved with skops), ONNX models and Python callables. The
    signature is inferred from ``input_example``. Returns the new ModelVersion when registered,
    else a LoggedModel. The run's artifacts and the version are recorded in one transaction.

    Example::

        version = cauce.log_model(clf, "model", registered_model="churn", input_example=X[:5])
    """
    ws = current()
    target_run = run_id or _active_run_id()
    path = check_artifact_path(name)
    if registered_model is not None:
        check_name(registered_model, "model name")  # before any file is written
    get_run(target_run, workspace=ws)  # before uploading, so a typo leaves no stray blob
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        save_model(
            model, folder, flavor=flavor, input_example=input_example, requirements=requirements
        )
        files = _upload(ws, folder)
    return record_model(
        target_run,
        path,
        files,
        registered_model=registered_model,
        description=description,
        tags=tags,
        workspace=ws,
    )


@operation("POST /runs/{run_id}/models")
def record_model(
    run_id: str,
    path: str,
    files: list[ArtifactEntry],
    *,
    registered_model: str | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion | LoggedModel:
    """Record model files already in the artifact store as the run's artifacts under ``path``
    and, with ``registered_model``, as that model's new version; in one transaction.

    ``files`` are relative to the model's folder and hold its ``cauce-model.yaml``.
    """
    import yaml

    ws = workspace or current()
    path = check_artifact_path(path)
    if registered_model is not None:
        check_name(registered_model, "model name")
    blobs = _blobs(ws, files)
    spec = yaml.safe_load(ws.artifacts.read_bytes(blobs[SPEC_FILE].sha256))
    with ws.store.write() as conn:
        attach(conn, ws, run_id, [(f"{path}/{rel}", blob) for rel, blob in blobs.items()])
        if registered_model is None:
            return LoggedModel(run_id, path, spec["flavor"], spec.get("signature"))
        return create_version(
            conn,
            ws,
            registered_model,
            {rel: blob.sha256 for rel, blob in blobs.items()},
            run_id=run_id,
            artifact_path=path,
            description=description,
            tags=tags,
        )


def register_pretrained(
    model: Any,
    name: str,
    *,
    flavor: str | None = None,
    requirements: list[str] | None = None,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Save a model no run produced (pre-trained, shipped in a package) and register it as a new
    version of ``name``; its files are stored and recorded in the version's transaction.

    Example::

        cauce.registry.logging.register_pretrained("model.gguf", "smollm2", flavor="gguf")
    """
    ws = workspace or current()
    check_name(name, "model name")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        save_model(model, folder, flavor=flavor, requirements=requirements)
        files = _upload(ws, folder)
    return record_pretrained(name, files, description=description, tags=tags, workspace=ws)


@operation("POST /models/{name}/pretrained")
def record_pretrained(
    name: str,
    files: list[ArtifactEntry],
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Record model files already in the artifact store as a new version of ``name`` that no
    run produced; ``files`` are relative to the model's folder and hold its spec."""
    ws = workspace or current()
    check_name(name, "model name")
    blobs = _blobs(ws, files)
    with ws.store.write() as conn:
        for blob in blobs.values():
            record_blob(conn, blob)
        return create_version(
            conn,
            ws,
            name,
            {rel: blob.sha256 for rel, blob in blobs.items()},
            run_id=None,
            artifact_path=None,
            description=description,
            tags=tags,
        )


def _upload(ws: Workspace, folder: Path) -> list[ArtifactEntry]:
    """Store every file of a saved model folder; their paths relative to the folder."""
    entries = []
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            blob = ws.artifacts.put_file(file)
            rel = file.relative_to(folder).as_posix()
            entries.append(ArtifactEntry(rel, blob.sha256, blob.size, blob.media_type))
    return entries


def _blobs(ws: Workspace, files: list[ArtifactEntry]) -> dict[str, Blob]:
    """The model's files as blobs the artifact store holds (NotFound for one it does not)."""
    blobs = {}
    for entry in files:
        rel = check_artifact_path(entry.path)
        if not ws.artifacts.exists(entry.sha256):
            raise NotFound(
                f"model file {rel} ({entry.sha256}) is not in the artifact store",
                hint="upload its content first",
            )
        uri = ws.artifacts.uri_of(entry.sha256)
        blobs[rel] = Blob(entry.sha256, entry.size, uri, entry.media_type)
    if SPEC_FILE not in blobs:
        raise NotFound(f"the model's files hold no {SPEC_FILE}")
    return blobs


def _active_run_id() -> str:
    active = fluent.active_run()
    if active is None:
        raise InvalidInput(
            "log_model needs a run",
            hint="call it inside 'with cauce.start_run():' or pass run_id=",
        )
    return active.run_id
