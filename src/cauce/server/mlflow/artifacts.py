"""MLflow's artifacts proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``) over Cauce's
content-addressed artifact store.

Paths the MLflow client is given (in ``artifact_uri``, a logged model's ``artifact_uri`` and a
version's download URI) name what they address::

    <experiment id>/<run id>/artifacts/<path>        a run's files (read and write)
    <experiment id>/models/<model id>/artifacts/<path>  a logged model without a run (read, write)
    model-versions/<name>/<version>/<path>           a registered version's files (read only)

A file uploaded is stored once by sha256 and recorded with its run (audited, a lineage edge);
a file downloaded is checked against its sha256 first.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.errors import NotFound
from cauce.server.mlflow.wire import MlflowError
from cauce.tracking.artifacts import check_artifact_path
from cauce.workspace import Workspace

_RUN = re.compile(r"^[^/]+/(?P<run>[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?$")
_MODEL = re.compile(r"^[^/]+/models/(?P<model>m-[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?$")
_VERSION = re.compile(r"^model-versions/(?P<name>[^/]+)/(?P<version>\d+)(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class Target:
    """What a proxy path addresses: a run, a logged model or a version, and a path inside it."""

    kind: str  # run | model | version
    owner: str  # run id, logged model id, or model name
    version: int
    path: str  # "" for the root


def parse(path: str) -> Target:
    """The target of a proxy path; anything else is RESOURCE_DOES_NOT_EXIST."""
    path = path.strip("/")
    for kind, pattern in (("run", _RUN), ("model", _MODEL), ("version", _VERSION)):
        found = pattern.match(path)
        if found is None:
            continue
        inner = found["path"] or ""
        inner = "" if not inner.strip("/") else check_artifact_path(inner.strip("/"))
        inner = "" if inner == "." else inner
        owner = found["name"] if kind == "version" else found[kind]
        version = int(found["version"]) if kind == "version" else 0
        return Target(kind, owner, version, inner)
    raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"no artifact location {path!r} on this server")


def files_of(ws: Workspace, target: Target) -> dict[str, tuple[str, int]]:
    """Every file of the target's owner: path → (sha256, size)."""
    from cauce.registry.mlflow_format import file_sizes
    from cauce.registry.models import get_version
    from cauce.tracking.artifacts import list_artifacts
    from cauce.tracking.logged_models import logged_model_files

    if target.kind == "run":
        return {e.path: (e.sha256, e.size) for e in list_artifacts(target.owner, workspace=ws)}
    if target.kind == "model":
        files = logged_model_files(target.owner, workspace=ws)
    else:
        files = dict(get_version(target.owner, target.version, workspace=ws).files)
    sizes = file_sizes(files.values(), workspace=ws)
    return {path: (sha, sizes.get(sha, 0)) for path, sha in files.items()}


def listing(ws: Workspace, path: str) -> dict[str, Any]:
    """The files and folders directly under ``path`` (names relative to it); a file lists
    nothing, as MLflow's proxy does."""
    target = parse(path)
    prefix = target.path + "/" if target.path else ""
    entries: dict[str, dict[str, Any]] = {}
    for name, (_, size) in files_of(ws, target).items():
        if not name.startswith(prefix):
            continue
        head, sep, _ = name[len(prefix) :].partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": size}
    return {"files": [entries[k] for k in sorted(entries)]}


def locate(ws: Workspace, path: str) -> tuple[str, str]:
    """The sha256 and file name of the file at a proxy path."""
    target = parse(path)
    found = files_of(ws, target).get(target.path)
    if found is None:
        raise NotFound(f"no artifact at {path!r}")
    return found[0], posixpath.basename(target.path)


def read_to_file(ws: Workspace, sha: str) -> tuple[Path, bool]:
    """A local file with the blob's content, checked against its sha256: the store's own file
    on a local store (False), else a temporary copy to delete afterwards (True)."""
    store = ws.artifacts
    if store.is_local:
        store.verify(sha)
        return Path(store.path_of(sha)), False
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        name = handle.name
    return store.get_file(sha, name), True


def store_upload(ws: Workspace, path: str, local: Path) -> None:
    """Record the uploaded file ``local`` at the proxy path (a run's or a logged model's)."""
    from cauce.tracking.artifacts import log_artifact
    from cauce.tracking.logged_models import attach_files

    target = parse(path)
    if target.kind == "version" or not target.path:
        raise MlflowError(
            "PERMISSION_DENIED", f"{path!r} cannot be written: a version's files never change"
        )
    head, name = posixpath.split(target.path)
    named = local.parent / name
    local.rename(named)
    if target.kind == "run":
        log_artifact(target.owner, named, head or None, workspace=ws)
        return
    blob = ws.artifacts.put_file(named)
    with ws.store.write() as conn:
        attach_files(conn, ws, target.owner, [(target.path, blob)])
