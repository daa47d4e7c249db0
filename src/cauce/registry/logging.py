"""``log_model``: save a model in the Cauce format as run artifacts, optionally registering it;
``register_pretrained``: save and register a model that no run trained (a packaged model)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.artifacts.records import record_blob
from cauce.errors import InvalidInput
from cauce.registry.format import SPEC_FILE, save_model
from cauce.registry.models import ModelVersion, create_version
from cauce.tracking import fluent
from cauce.tracking.artifacts import attach, check_artifact_path, require_run
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
    with ws.store.read() as conn:
        require_run(conn, target_run)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        spec = save_model(
            model, folder, flavor=flavor, input_example=input_example, requirements=requirements
        )
        blobs = {
            p.relative_to(folder).as_posix(): ws.artifacts.put_file(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    with ws.store.write() as conn:
        attach(conn, ws, target_run, [(f"{path}/{rel}", blob) for rel, blob in blobs.items()])
        if registered_model is None:
            return LoggedModel(target_run, path, spec["flavor"], spec.get("signature"))
        files = {rel: blob.sha256 for rel, blob in blobs.items()}
        assert SPEC_FILE in files
        return create_version(
            conn,
            ws,
            registered_model,
            files,
            run_id=target_run,
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
        blobs = {
            p.relative_to(folder).as_posix(): ws.artifacts.put_file(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
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


def _active_run_id() -> str:
    active = fluent.active_run()
    if active is None:
        raise InvalidInput(
            "log_model needs a run",
            hint="call it inside 'with cauce.start_run():' or pass run_id=",
        )
    return active.run_id
