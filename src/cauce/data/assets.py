"""Datasets and their immutable, content-addressed versions, stored as Parquet."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.store import insert_ignore, new_id, now_ms
from cauce.store.schema import dataset_versions, datasets
from cauce.validation import check_name
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd

LAYERS = ("bronze", "silver", "gold")


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


def read_source(source: Any) -> tuple[pd.DataFrame, str]:
    """A DataFrame and a description of where it came from."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "dataframe"
    if not isinstance(source, (str, Path)):
        raise InvalidInput(
            f"a dataset source must be a DataFrame or a path, got {type(source).__name__}"
        )
    path = str(source)
    lower = path.lower()
    readers = {
        ".csv": pd.read_csv,
        ".csv.gz": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".json": pd.read_json,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
    }
    reader = next((r for suffix, r in readers.items() if lower.endswith(suffix)), None)
    if reader is None:
        raise InvalidInput(
            f"cannot tell the format of {path}", hint="use .csv, .parquet, .json or .jsonl"
        )
    try:
        frame = reader(path)
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except Exception as exc:  # every reader has its own error types
        raise InvalidInput(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return frame, path


def register(
    name: str,
    source: Any,
    *,
    layer: str | None = None,
    description: str | None = None,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """Register a table as a new version of a dataset; the same content returns its version."""
    ws = workspace or current()
    check_name(name, "dataset name")
    if layer is not None and layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    frame, origin = read_source(source)
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
    with ws.store.read() as conn:
        existing = _find_by_hash(conn, name, digest)
    if existing is not None:
        return existing

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
        blob = ws.artifacts.put_file(tmp, media_type="application/vnd.apache.parquet")
    finally:
        os.unlink(tmp)

    from cauce.tracking.artifacts import record_blob

    with ws.store.write() as conn:
        dataset_id = new_id()
        created = insert_ignore(
            conn,
            datasets,
            {"id": dataset_id, "name": name, "description": description, "created_at": now_ms()},
        )
        if created:
            audit.record(
                conn, ws.user, "dataset.create", "dataset", dataset_id, after={"name": name}
            )
        else:
            # Locked until commit: concurrent registrations take turns for the next number
            # (and the content check below sees what the one before committed).
            dataset_id = conn.execute(
                select(datasets.c.id).where(datasets.c.name == name).with_for_update()
            ).scalar_one()
            existing = _find_by_hash(conn, name, digest)
            if existing is not None:
                return existing
        number = (
            conn.execute(
                select(func.max(dataset_versions.c.version)).where(
                    dataset_versions.c.dataset_id == dataset_id
                )
            ).scalar()
            or 0
        ) + 1
        record_blob(conn, blob)
        values: dict[str, Any] = {
            "id": new_id(),
            "dataset_id": dataset_id,
            "version": number,
            "content_hash": digest,
            "sha256": blob.sha256,
            "schema": {str(c): str(t) for c, t in frame.dtypes.items()},
            "row_count": len(frame),
            "source": origin,
            "layer": layer,
            "profile": None,
            "created_at": now_ms(),
        }
        conn.execute(dataset_versions.insert().values(values))
        audit.record(
            conn,
            ws.user,
            "dataset_version.create",
            "dataset_version",
            values["id"],
            after={"name": name, "version": number, "rows": len(frame), "content_hash": digest},
        )
        return _version(name, values)


def get_version(ref: str, *, workspace: Workspace | None = None) -> DatasetVersion:
    """A version by ``name@version``, or the newest one by ``name``."""
    ws = workspace or current()
    if not isinstance(ref, str):
        raise InvalidInput(f"a dataset reference must be a string, got {type(ref).__name__}")
    name, at, number = ref.partition("@")
    number = number.removeprefix("v")
    if at and not (number.isascii() and number.isdigit()):
        raise InvalidInput(f"dataset version must be a number: {ref!r}", hint="write name@3")
    query = (
        select(dataset_versions, datasets.c.name)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name)
        .order_by(dataset_versions.c.version.desc())
        .limit(1)
    )
    if number:
        query = query.where(dataset_versions.c.version == int(number))
    with ws.store.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"dataset version {ref!r} does not exist")
    return _version(row.name, row._mapping)


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
    """The table of a dataset version, verified against its sha256."""
    import io

    import pandas as pd

    ws = workspace or current()
    version = resolve_version(ref, workspace=ws)
    return pd.read_parquet(io.BytesIO(ws.artifacts.read_bytes(version.sha256)))


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
