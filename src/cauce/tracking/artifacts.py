"""Files logged by runs: stored content-addressed, listed and downloaded by path."""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from cauce.artifacts import Blob, media_type_of
from cauce.artifacts.records import record_blob
from cauce.errors import BackendError, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.store import id_matches, only_match, upsert
from cauce.store.schema import artifacts, run_artifacts, runs
from cauce.tracking.runs import get_run
from cauce.workspace import Workspace, current


@dataclass(frozen=True)
class ArtifactEntry:
    """A file logged by a run."""

    path: str
    sha256: str
    size: int
    media_type: str


def check_artifact_path(path: str) -> str:
    """A relative POSIX path inside the run: no absolute paths, no ``..``."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(f"artifact path must be a non-empty string, got {path!r}")
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidInput(
            f"artifact path {path!r} must stay inside the run (no '/' or '..' prefix)"
        )
    return normal


def attach(conn: Connection, ws: Workspace, run_id: str, files: list[tuple[str, Blob]]) -> None:
    """Record run paths as pointing at stored blobs, audited, each blob a lineage node logged by
    the run (inside the caller's transaction)."""
    require_run(conn, run_id)
    before = {
        r.path: r.sha256
        for r in conn.execute(
            select(run_artifacts.c.path, run_artifacts.c.sha256).where(
                run_artifacts.c.run_id == run_id,
                run_artifacts.c.path.in_([path for path, _ in files]),
            )
        )
    }
    for path, blob in files:
        record_blob(conn, blob)
        upsert(
            conn,
            run_artifacts,
            {"run_id": run_id, "path": path, "sha256": blob.sha256},
            ("run_id", "path"),
        )
        add_edge(conn, ("run", run_id), ("artifact", blob.sha256), "logged")
    audit.record(
        conn,
        ws.user,
        "run.artifacts",
        "run",
        run_id,
        before=before or None,
        after={path: blob.sha256 for path, blob in files},
    )


def require_run(conn: Connection, run_id: str) -> None:
    """NotFound unless the run exists."""
    if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise NotFound(f"run {run_id!r} does not exist")


def log_artifact(
    run_id: str,
    local_path: str | Path,
    artifact_path: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> str:
    """Store a local file under ``artifact_path/<file name>`` of the run; return that path."""
    ws = workspace or current()
    local = Path(local_path)
    if not local.is_file():
        raise NotFound(f"no such file: {local}")
    path = check_artifact_path(posixpath.join(artifact_path or "", local.name))
    get_run(run_id, workspace=ws)  # before uploading, so a typo leaves no stray blob
    blob = ws.artifacts.put_file(local)
    record_artifacts(run_id, [_entry(path, blob)], workspace=ws)
    return path


def log_text(
    run_id: str, text: str, artifact_file: str, *, workspace: Workspace | None = None
) -> str:
    """Store text (UTF-8) as the run's file ``artifact_file`` (``notes/summary.md``); return
    its path."""
    if not isinstance(text, str):
        raise InvalidInput(
            f"text must be a string, got {type(text).__name__}", details={"field": "text"}
        )
    return _log_bytes(run_id, text.encode(), artifact_file, workspace or current())


def log_dict(
    run_id: str,
    dictionary: Mapping[str, Any],
    artifact_file: str,
    *,
    workspace: Workspace | None = None,
) -> str:
    """Store a dictionary as the run's file ``artifact_file``: YAML when its name ends in
    ``.yaml`` or ``.yml``, JSON otherwise (indented, keys in their order); return its path."""
    if not isinstance(dictionary, Mapping):
        raise InvalidInput(
            f"dictionary must be a mapping, got {type(dictionary).__name__}",
            details={"field": "dictionary"},
        )
    if check_artifact_path(artifact_file).lower().endswith((".yaml", ".yml")):
        import yaml

        try:
            text = yaml.safe_dump(dict(dictionary), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            raise InvalidInput(
                f"dictionary cannot be written as YAML: {exc}", details={"field": "dictionary"}
            ) from None
    else:
        try:
            text = json.dumps(dictionary, indent=2, ensure_ascii=False, allow_nan=True) + "\n"
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"dictionary cannot be written as JSON: {exc}", details={"field": "dictionary"}
            ) from None
    return _log_bytes(run_id, text.encode(), artifact_file, workspace or current())


TABLE_SUFFIXES = (".parquet", ".csv", ".json")


def log_table(
    run_id: str, data: Any, artifact_file: str, *, workspace: Workspace | None = None
) -> str:
    """Store a table (a pandas DataFrame, or a dict of equal-length columns) as the run's file
    ``artifact_file``: Parquet, CSV or JSON (``{"columns": [...], "data": [[...], ...]}``, as
    MLflow's ``log_table`` writes) by its extension; return its path."""
    import pandas as pd

    suffix = _suffix(artifact_file, TABLE_SUFFIXES)
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping):
        try:
            frame = pd.DataFrame(dict(data))
        except ValueError as exc:  # columns of different lengths, scalars only
            raise InvalidInput(f"data is not a table: {exc}", details={"field": "data"}) from None
    else:
        raise InvalidInput(
            f"data must be a pandas DataFrame or a dict of columns, got {type(data).__name__}",
            details={"field": "data"},
        )
    buffer = io.BytesIO()
    if suffix == ".parquet":
        frame.to_parquet(buffer, index=False)
    elif suffix == ".csv":
        frame.to_csv(buffer, index=False)
    else:
        frame.to_json(buffer, orient="split", index=False, date_format="iso")
    return _log_bytes(run_id, buffer.getvalue(), artifact_file, workspace or current())


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".svg": "svg", ".pdf": "pdf"}


def log_image(
    run_id: str, image: Any, artifact_file: str, *, workspace: Workspace | None = None
) -> str:
    """Store an image as the run's file ``artifact_file`` (``.png``, ``.jpg``): a Pillow image,
    or an array of height x width (grey) or height x width x 1, 3 (RGB) or 4 (RGBA) channels,
    of integers 0 to 255 or floats 0 to 1; return its path."""
    suffix = _suffix(artifact_file, IMAGE_FORMATS)
    try:
        from PIL import Image
    except ImportError:
        raise BackendError(
            "log_image needs Pillow to encode the image", hint="pip install 'cauce[images]'"
        ) from None
    picture = image if isinstance(image, Image.Image) else Image.fromarray(_pixels(image))
    if IMAGE_FORMATS[suffix] == "JPEG" and picture.mode not in ("L", "RGB"):
        raise InvalidInput(
            f"a JPEG holds grey or RGB pixels, not {picture.mode}: name the file .png",
            details={"field": "artifact_file"},
        )
    buffer = io.BytesIO()
    picture.save(buffer, format=IMAGE_FORMATS[suffix])
    return _log_bytes(run_id, buffer.getvalue(), artifact_file, workspace or current())


def _pixels(image: Any) -> Any:
    """An array's pixels as 8-bit integers, checked."""
    import numpy as np

    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"image is not an array: {exc}", details={"field": "image"}) from None
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))) or not array.size:
        raise InvalidInput(
            f"an image is height x width, with 1, 3 or 4 channels; got shape {array.shape}",
            details={"field": "image"},
        )
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise InvalidInput(
                f"integer pixels are 0 to 255; these run from {array.min()} to {array.max()}",
                details={"field": "image"},
            )
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InvalidInput(
                "float pixels are 0 to 1 (none missing); these run from "
                f"{np.nanmin(array)} to {np.nanmax(array)}",
                details={"field": "image"},
            )
        return np.round(array * 255).astype(np.uint8)
    raise InvalidInput(f"pixels must be numbers, got {array.dtype}", details={"field": "image"})


def log_figure(
    run_id: str, figure: Any, artifact_file: str, *, workspace: Workspace | None = None
) -> str:
    """Store a matplotlib figure as the run's file ``artifact_file``, drawn in the format its
    extension names (``.png``, ``.jpg``, ``.svg``, ``.pdf``); return its path."""
    suffix = _suffix(artifact_file, FIGURE_FORMATS)
    if not callable(getattr(figure, "savefig", None)):
        raise InvalidInput(
            f"figure must be a matplotlib figure, got {type(figure).__name__}",
            details={"field": "figure"},
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=FIGURE_FORMATS[suffix])
    return _log_bytes(run_id, buffer.getvalue(), artifact_file, workspace or current())


def _suffix(artifact_file: str, suffixes: Collection[str]) -> str:
    """The file's extension, one of ``suffixes``."""
    suffix = Path(check_artifact_path(artifact_file)).suffix.lower()
    if suffix not in suffixes:
        raise InvalidInput(
            f"{artifact_file!r} must end in {', '.join(suffixes)}",
            details={"field": "artifact_file"},
        )
    return suffix


def _log_bytes(run_id: str, data: bytes, artifact_file: str, ws: Workspace) -> str:
    path = check_artifact_path(artifact_file)
    if posixpath.basename(path) in ("", "."):
        raise InvalidInput(
            f"artifact_file must name a file in the run, such as notes/summary.md, not "
            f"{artifact_file!r}",
            details={"field": "artifact_file"},
        )
    get_run(run_id, workspace=ws)  # before uploading, so a typo leaves no stray blob
    blob = ws.artifacts.put_bytes(data, media_type=media_type_of(path))
    record_artifacts(run_id, [_entry(path, blob)], workspace=ws)
    return path


def log_artifacts(
    run_id: str,
    local_dir: str | Path,
    artifact_path: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> list[str]:
    """Store every file under a local folder, keeping relative paths; one metadata transaction."""
    ws = workspace or current()
    folder = Path(local_dir)
    if not folder.is_dir():
        raise NotFound(f"no such folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    get_run(run_id, workspace=ws)
    entries = []
    for file in files:
        rel = file.relative_to(folder).as_posix()
        path = check_artifact_path(posixpath.join(artifact_path or "", rel))
        entries.append(_entry(path, ws.artifacts.put_file(file)))
    if entries:
        record_artifacts(run_id, entries, workspace=ws)
    return [entry.path for entry in entries]


@operation("POST /runs/{run_id}/artifacts")
def record_artifacts(
    run_id: str, files: list[ArtifactEntry], *, workspace: Workspace | None = None
) -> None:
    """Record run paths as pointing at blobs already in the artifact store, in one transaction.

    Through a server the blobs are uploaded first; one the store does not hold is NotFound.
    """
    ws = workspace or current()
    blobs = []
    for entry in files:
        path = check_artifact_path(entry.path)
        if not ws.artifacts.exists(entry.sha256):
            raise NotFound(
                f"artifact {entry.sha256} ({path}) is not in the artifact store",
                hint="upload its content first",
            )
        uri = ws.artifacts.uri_of(entry.sha256)
        blobs.append((path, Blob(entry.sha256, entry.size, uri, entry.media_type)))
    with ws.store.write() as conn:
        attach(conn, ws, run_id, blobs)


def _listed(run_id: str, ws: Workspace) -> list[ArtifactEntry]:
    # Paths are checked again where files are written: a listing from a server is not trusted
    # to keep them inside the destination folder.
    entries = list_artifacts(run_id, workspace=ws)
    for entry in entries:
        check_artifact_path(entry.path)
    return entries


def _entry(path: str, blob: Blob) -> ArtifactEntry:
    return ArtifactEntry(path, blob.sha256, blob.size, blob.media_type)


@operation("GET /runs/{run_id}/artifacts")
def list_artifacts(
    run_id: str, path: str | None = None, *, workspace: Workspace | None = None
) -> list[ArtifactEntry]:
    """The run's files, optionally under one folder."""
    ws = workspace or current()
    query = (
        select(run_artifacts.c.path, artifacts.c.sha256, artifacts.c.size, artifacts.c.media_type)
        .join(artifacts, artifacts.c.sha256 == run_artifacts.c.sha256)
        .where(run_artifacts.c.run_id == run_id)
        .order_by(run_artifacts.c.path)
    )
    with ws.store.read() as conn:
        if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise NotFound(f"run {run_id!r} does not exist")
        rows = conn.execute(query).all()
    folder = check_artifact_path(path) if path else "."
    prefix = "" if folder == "." else folder + "/"  # "." (or "a/..") is the run's root
    return [
        ArtifactEntry(r.path, r.sha256, r.size, r.media_type)
        for r in rows
        if not prefix or r.path.startswith(prefix) or r.path == prefix[:-1]
    ]


def download_artifacts(
    run_id: str,
    path: str,
    dst: str | Path,
    *,
    workspace: Workspace | None = None,
) -> Path:
    """Copy a file, or every file under a folder, of the run into ``dst``; each is verified.

    ``path`` ``"."`` is the run's root: every file of the run, into the folder ``dst``.
    """
    ws = workspace or current()
    wanted = check_artifact_path(path)
    dst = Path(dst)
    if wanted == ".":
        entries = _listed(run_id, ws)
        dst.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            ws.artifacts.get_file(entry.sha256, dst / entry.path)
        return dst
    entries = [
        e for e in _listed(run_id, ws) if e.path == wanted or e.path.startswith(wanted + "/")
    ]
    if not entries:
        raise NotFound(f"run {run_id} has no artifact {path!r}")
    if len(entries) == 1 and entries[0].path == wanted:
        target = dst / posixpath.basename(wanted) if dst.is_dir() else dst
        return ws.artifacts.get_file(entries[0].sha256, target)
    for entry in entries:
        ws.artifacts.get_file(entry.sha256, dst / posixpath.relpath(entry.path, wanted))
    return dst


@operation("GET /artifacts/{prefix}")
def find_artifact(prefix: str, *, workspace: Workspace | None = None) -> str:
    """The sha256 of the recorded artifact it starts with (4 to 64 hex characters, any case)."""
    ws = workspace or current()
    digest = prefix.lower()
    if not 4 <= len(digest) <= 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput(
            f"an artifact is named by its sha256 (4 to 64 hex characters), not {prefix!r}",
            details={"field": "prefix"},
        )
    with ws.store.read() as conn:
        found = (
            conn.execute(
                select(artifacts.c.sha256)
                .where(id_matches(artifacts.c.sha256, digest, length=64))
                .limit(2)
            )
            .scalars()
            .all()
        )
    return str(only_match(found, digest, "artifact", "prefix"))
