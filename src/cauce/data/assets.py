"""Datasets and their immutable, content-addressed versions, stored as Parquet."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, func, select

from cauce.artifacts import Blob
from cauce.artifacts.records import record_blob
from cauce.data.sources import Source, as_source
from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import insert_ignore, new_id, now_ms
from cauce.store.schema import dataset_versions, datasets
from cauce.validation import check_name
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd

LAYERS = ("bronze", "silver", "gold")
# The key in ``DataFrame.attrs`` under which a loaded frame names its version ("churn@3").
VERSION_ATTR = "cauce.dataset_version"


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset."""

    id: str
    name: str
    version: int
    content_hash: str
    sha256: str
    schema: dict[str, str]
    row_count: int
    source: str
    layer: str | None
    created_at: int

    @property
    def ref(self) -> str:
        """``name@version``, as the CLI and ``log_input`` accept it."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 of a table's columns, types and values, independent of the file format."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def register(
    name: str,
    source: pd.DataFrame | str | Path | Source,
    *,
    layer: str | None = None,
    description: str | None = None,
    allow_schema_change: bool = False,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """Register a table as a new version of a dataset; the same content returns its version.

    ``source`` is a DataFrame, a CSV/TSV/Parquet/JSON/JSONL path or fsspec URL, or
    ``cauce.data.sql(query, url=...)``. The table is stored as Parquet and profiled. A table
    whose columns or column types differ from those of the newest version in the same layer
    is refused with :class:`~cauce.errors.Conflict` (code ``schema-changed``) unless
    ``allow_schema_change=True``.

    Example:
        cauce.data.register("orders", "data/orders.csv", layer="bronze")
    """
    ws = workspace or current()
    table = prepare_version(
        name,
        source,
        layer=layer,
        description=description,
        allow_schema_change=allow_schema_change,
        workspace=ws,
    )
    if table.existing is not None:
        return table.existing
    return record_version(table, workspace=ws)


@dataclass(frozen=True)
class PreparedVersion:
    """A table read, hashed, stored as a Parquet blob and profiled: a version to be written.

    ``existing`` is the version that already holds this content (then nothing was stored).
    """

    name: str
    content_hash: str
    schema: dict[str, str]
    row_count: int
    source: str
    layer: str | None
    description: str | None
    allow_schema_change: bool
    existing: DatasetVersion | None = None
    blob: Blob | None = None
    profile: dict[str, Any] | None = None


def prepare_version(
    name: str,
    source: pd.DataFrame | str | Path | Source,
    *,
    layer: str | None = None,
    description: str | None = None,
    allow_schema_change: bool = False,
    workspace: Workspace | None = None,
) -> PreparedVersion:
    """Everything :func:`register` does before its transaction: read, check, store the blob.

    The blob is content-addressed, so storing it before the metadata is harmless; the version
    exists once :func:`write_version` commits.
    """
    ws = workspace or current()
    check_name(name, "dataset name")
    if layer is not None and layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    reader = as_source(source)
    frame, origin = reader.read(), reader.description
    frame.attrs.pop(VERSION_ATTR, None)  # a new version is not the one it was made from
    frame.columns = [str(c) for c in frame.columns]
    duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if duplicated:
        raise InvalidInput(
            f"dataset {name!r} has duplicate column names: {', '.join(map(repr, duplicated))}"
        )
    try:
        digest = content_hash(frame)
    except TypeError as exc:  # cells that pandas cannot hash: lists, dicts, sets
        raise InvalidInput(
            f"dataset {name!r} cannot be versioned: column {_unhashable_column(frame)!r} "
            f"holds values that cannot be hashed ({exc})",
            hint="convert such cells to strings or scalar values first",
        ) from None
    schema = {str(c): str(t) for c, t in frame.dtypes.items()}
    table = PreparedVersion(
        name, digest, schema, len(frame), origin, layer, description, allow_schema_change
    )
    existing = find_version(name, digest, workspace=ws)
    if existing is not None:
        return replace(table, existing=existing)

    from cauce.data.profile import profile_parquet

    fd, tmp = tempfile.mkstemp(suffix=".parquet")
    os.close(fd)
    try:
        try:
            frame.to_parquet(tmp, index=False)
        except (TypeError, ValueError) as exc:  # pyarrow's errors derive from these
            raise InvalidInput(
                f"dataset {name!r} cannot be stored as Parquet: {type(exc).__name__}: {exc}",
                hint="give each column values of one type",
            ) from None
        # A table that cannot be stored fails above, with its own reason, before this check.
        if not allow_schema_change:
            check_schema(name, schema, layer, workspace=ws)
        profile = profile_parquet(tmp)
        blob = ws.artifacts.put_file(tmp, media_type="application/vnd.apache.parquet")
    finally:
        os.unlink(tmp)
    return replace(table, blob=blob, profile=profile)


def write_version(
    conn: Connection, ws: Workspace, table: PreparedVersion
) -> tuple[DatasetVersion, bool]:
    """Write a prepared table as the dataset's next version, audited, inside the caller's
    transaction; return it and whether it is new (False: this content was a version already).
    """
    name = table.name
    dataset_id = new_id()
    created = insert_ignore(
        conn,
        datasets,
        {
            "id": dataset_id,
            "name": name,
            "description": table.description,
            "created_at": now_ms(),
        },
    )
    if created:
        audit.record(conn, ws.user, "dataset.create", "dataset", dataset_id, after={"name": name})
    else:
        # Locked until commit: concurrent registrations take turns for the next number
        # (and the content check below sees what the one before committed).
        dataset_id = conn.execute(
            select(datasets.c.id).where(datasets.c.name == name).with_for_update()
        ).scalar_one()
        existing = _find_by_hash(conn, name, table.content_hash)
        if existing is not None:
            return existing, False
    if table.blob is None:  # prepared without a blob only when the content existed
        raise InvalidInput(
            f"dataset {name!r} has no version with content {table.content_hash}, and no blob "
            "was given for a new one",
            details={"field": "blob"},
        )
    # Checked again under the lock: a concurrent registration may have changed the newest.
    changed = _check_schema(conn, name, table.schema, table.layer, allow=table.allow_schema_change)
    number = (
        conn.execute(
            select(func.max(dataset_versions.c.version)).where(
                dataset_versions.c.dataset_id == dataset_id
            )
        ).scalar()
        or 0
    ) + 1
    record_blob(conn, table.blob)
    values: dict[str, Any] = {
        "id": new_id(),
        "dataset_id": dataset_id,
        "version": number,
        "content_hash": table.content_hash,
        "sha256": table.blob.sha256,
        "schema": table.schema,
        "row_count": table.row_count,
        "source": table.source,
        "layer": table.layer,
        "profile": table.profile,
        "created_at": now_ms(),
    }
    conn.execute(dataset_versions.insert().values(values))
    audit.record(
        conn,
        ws.user,
        "dataset_version.create",
        "dataset_version",
        values["id"],
        after={
            "name": name,
            "version": number,
            "rows": table.row_count,
            "content_hash": table.content_hash,
            **({"schema_change": changed} if changed else {}),
        },
    )
    return _version(name, values), True


@operation("POST /dataset-versions")
def record_version(table: PreparedVersion, *, workspace: Workspace | None = None) -> DatasetVersion:
    """Write a prepared table, whose Parquet blob is in the artifact store, as a version.

    The same content returns its version. Through a server the blob is uploaded first (one the
    store does not hold is NotFound) and its URI is the server's own.
    """
    ws = workspace or current()
    check_name(table.name, "dataset name")
    if table.layer is not None and table.layer not in LAYERS:
        raise InvalidInput(
            f"layer must be one of {', '.join(LAYERS)}, not {table.layer!r}",
            details={"field": "table.layer"},
        )
    table = stored_blob(ws, table)
    with ws.store.write() as conn:
        return write_version(conn, ws, table)[0]


def stored_blob(ws: Workspace, table: PreparedVersion) -> PreparedVersion:
    """The table with its blob as the artifact store holds it; NotFound if it holds none."""
    blob = table.blob
    if blob is None:
        return table
    if not ws.artifacts.exists(blob.sha256):
        raise NotFound(
            f"the Parquet blob {blob.sha256} of dataset {table.name!r} is not in the artifact "
            "store",
            hint="upload its content first",
        )
    uri = ws.artifacts.uri_of(blob.sha256)
    return replace(table, existing=None, blob=Blob(blob.sha256, blob.size, uri, blob.media_type))


@operation("GET /datasets/{name}/content/{content_hash}")
def find_version(
    name: str, content_hash: str, *, workspace: Workspace | None = None
) -> DatasetVersion | None:
    """The version of a dataset that holds this content (see :func:`content_hash`), if any."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _find_by_hash(conn, name, content_hash)


@operation("POST /datasets/{name}/schema-check", role="viewer", idempotent=True)
def check_schema(
    name: str,
    schema: dict[str, str],
    layer: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Conflict (``schema-changed``) when ``schema`` differs from the newest version's in the
    layer: the check :func:`register` makes before it stores a table."""
    ws = workspace or current()
    with ws.store.read() as conn:
        _check_schema(conn, name, schema, layer, allow=False)


@operation("GET /dataset-versions/{ref}")
def get_version(ref: str, *, workspace: Workspace | None = None) -> DatasetVersion:
    """A version by ``name@version``, or the newest one by ``name``."""
    ws = workspace or current()
    query = _ref_query(ref, select(dataset_versions, datasets.c.name))
    with ws.store.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"dataset version {ref!r} does not exist")
    return _version(row.name, row._mapping)


def version_in(conn: Connection, ref: str) -> DatasetVersion:
    """:func:`get_version` inside the caller's transaction."""
    row = conn.execute(_ref_query(ref, select(dataset_versions, datasets.c.name))).first()
    if row is None:
        raise NotFound(f"dataset version {ref!r} does not exist")
    return _version(row.name, row._mapping)


def _ref_query(ref: str, query: Select[Any]) -> Select[Any]:
    """``query`` narrowed to the version that ``name@version`` (or ``name``: the newest) names."""
    if not isinstance(ref, str):
        raise InvalidInput(f"a dataset reference must be a string, got {type(ref).__name__}")
    name, at, number = ref.partition("@")
    number = number.removeprefix("v")
    if at and not (number.isascii() and number.isdigit()):
        raise InvalidInput(f"dataset version must be a number: {ref!r}", hint="write name@3")
    query = (
        query.join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name)
        .order_by(dataset_versions.c.version.desc())
        .limit(1)
    )
    if number:
        query = query.where(dataset_versions.c.version == int(number))
    return query


def resolve_version(value: Any, *, workspace: Workspace | None = None) -> DatasetVersion:
    """A DatasetVersion from itself or from a ``name@version`` reference."""
    if isinstance(value, DatasetVersion):
        return value
    if isinstance(value, str):
        return get_version(value, workspace=workspace)
    raise InvalidInput(
        f"expected a DatasetVersion or 'name@version', got {type(value).__name__}",
        hint="register the data first: cauce.data.register(name, frame)",
    )


def load(ref: Any, *, workspace: Workspace | None = None) -> pd.DataFrame:
    """The table of a dataset version, verified against its sha256.

    The frame names its version in ``frame.attrs[VERSION_ATTR]``; pandas keeps it in the
    columns, rows and splits taken from the frame, which lets ``autolog`` record the version
    as a fit's training input."""
    import io

    import pandas as pd

    ws = workspace or current()
    version = resolve_version(ref, workspace=ws)
    reads = _reads.get()
    if reads is not None and version.id not in reads:
        reads.append(version.id)
    frame = pd.read_parquet(io.BytesIO(ws.artifacts.read_bytes(version.sha256)))
    frame.attrs[VERSION_ATTR] = version.ref
    return frame


# The dataset versions that the running pipeline step has loaded, for its lineage edges.
_reads: ContextVar[list[str] | None] = ContextVar("cauce_dataset_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[list[str]]:
    """Collect the ids of the dataset versions that :func:`load` reads inside the block."""
    reads: list[str] = []
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


@operation("GET /datasets")
def list_datasets(*, workspace: Workspace | None = None) -> list[DatasetVersion]:
    """The newest version of every dataset."""
    ws = workspace or current()
    newest = (
        select(dataset_versions.c.dataset_id, func.max(dataset_versions.c.version).label("v"))
        .group_by(dataset_versions.c.dataset_id)
        .subquery()
    )
    query = (
        select(dataset_versions, datasets.c.name)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .join(
            newest,
            (newest.c.dataset_id == dataset_versions.c.dataset_id)
            & (newest.c.v == dataset_versions.c.version),
        )
        .order_by(datasets.c.name)
    )
    with ws.store.read() as conn:
        return [_version(r.name, r._mapping) for r in conn.execute(query)]


@operation("GET /datasets/{name}/versions")
def versions(name: str, *, workspace: Workspace | None = None) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first."""
    ws = workspace or current()
    query = (
        select(dataset_versions, datasets.c.name)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name)
        .order_by(dataset_versions.c.version)
    )
    with ws.store.read() as conn:
        rows = conn.execute(query).all()
    if not rows:
        raise NotFound(f"dataset {name!r} does not exist")
    return [_version(r.name, r._mapping) for r in rows]


def _unhashable_column(frame: pd.DataFrame) -> str:
    import pandas as pd

    for column in frame.columns:
        try:
            pd.util.hash_pandas_object(frame[column], index=False)
        except TypeError:
            return str(column)
    return "?"


def get_profile(ref: Any, *, workspace: Workspace | None = None) -> dict[str, Any]:
    """The column profile of a version (computed from its Parquet when it was never stored)."""
    ws = workspace or current()
    version = None if isinstance(ref, str) else resolve_version(ref, workspace=ws)
    stored = stored_profile(ref if version is None else version.ref, workspace=ws)
    if stored is not None:
        return stored
    version = version or get_version(ref, workspace=ws)
    from cauce.data.profile import profile_parquet

    with tempfile.TemporaryDirectory() as folder:
        local = ws.artifacts.get_file(version.sha256, Path(folder) / "table.parquet")
        return profile_parquet(str(local))


@operation("GET /dataset-versions/{ref}/profile")
def stored_profile(ref: str, *, workspace: Workspace | None = None) -> dict[str, Any] | None:
    """The column profile stored with a version at registration (None for one stored without)."""
    ws = workspace or current()
    query = _ref_query(ref, select(dataset_versions.c.profile))
    with ws.store.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"dataset version {ref!r} does not exist")
    return None if row.profile is None else dict(row.profile)


def schema_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, Any]:
    """Columns added, removed and whose type changed between two schemas."""
    return {
        "added": {c: t for c, t in after.items() if c not in before},
        "removed": {c: t for c, t in before.items() if c not in after},
        "type_changed": {
            c: {"from": before[c], "to": t}
            for c, t in after.items()
            if c in before and before[c] != t
        },
    }


def describe_schema_changes(changes: dict[str, Any]) -> str:
    """``added: a (int64); removed: b; type changed: c int64 → float64``, for messages."""
    parts = []
    if changes["added"]:
        parts.append("added " + ", ".join(f"{c} ({t})" for c, t in changes["added"].items()))
    if changes["removed"]:
        parts.append("removed " + ", ".join(changes["removed"]))
    if changes["type_changed"]:
        parts.append(
            "type changed "
            + ", ".join(f"{c} {d['from']} → {d['to']}" for c, d in changes["type_changed"].items())
        )
    return "; ".join(parts)


def _check_schema(
    conn: Connection, name: str, schema: dict[str, str], layer: str | None, *, allow: bool
) -> dict[str, Any] | None:
    """The changes since the newest version in the same layer; refused unless ``allow``."""
    same_layer = (
        dataset_versions.c.layer.is_(None) if layer is None else dataset_versions.c.layer == layer
    )
    newest = conn.execute(
        select(dataset_versions.c.version, dataset_versions.c.schema)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name, same_layer)
        .order_by(dataset_versions.c.version.desc())
        .limit(1)
    ).first()
    if newest is None:
        return None
    changes = schema_changes(dict(newest.schema), schema)
    if not any(changes.values()):
        return None
    if not allow:
        raise Conflict(
            f"the schema of dataset {name!r}{f' ({layer})' if layer else ''} changed since "
            f"v{newest.version}: "
            f"{describe_schema_changes(changes)}",
            code="schema-changed",
            hint="pass allow_schema_change=True (CLI: --allow-schema-change) if it is intended",
            details={"version": newest.version, **changes},
        )
    return {"since_version": newest.version, **changes}


def _find_by_hash(conn: Connection, name: str, digest: str) -> DatasetVersion | None:
    row = conn.execute(
        select(dataset_versions, datasets.c.name)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name, dataset_versions.c.content_hash == digest)
    ).first()
    return _version(row.name, row._mapping) if row else None


def _version(name: str, row: Any) -> DatasetVersion:
    return DatasetVersion(
        id=row["id"],
        name=name,
        version=row["version"],
        content_hash=row["content_hash"],
        sha256=row["sha256"],
        schema=dict(row["schema"]),
        row_count=row["row_count"],
        source=row["source"],
        layer=row["layer"],
        created_at=row["created_at"],
    )
