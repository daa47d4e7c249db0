"""Declarative specs: YAML documents whose ``kind`` picks a pydantic schema, applied idempotently.

``cauce apply -f FILE`` reads every document of the file, validates each against its kind (a bad
field is named in the error, with the document's position), then applies them one by one.
Applying the same file twice changes nothing the second time. Kinds are registered here as
``(kind, "module:apply_function")`` and imported when used. Endpoints are applied first and
rollouts last, wherever they stand in the file, since deployments and rollouts refer to them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.config import load_object
from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from sqlalchemy import Connection, Table

KINDS: tuple[tuple[str, str], ...] = (
    ("Schedule", "cauce.automation.schedules:apply_schedule"),
    ("Endpoint", "cauce.serving.endpoints:apply_endpoint"),
    ("Deployment", "cauce.serving.endpoints:apply_deployment"),
    ("Rollout", "cauce.serving.rollouts:apply_rollout"),
    ("Monitor", "cauce.monitoring.monitors:apply_monitor"),
)
# Checks over the whole file before anything is applied, for kinds that refer to each other.
PRECHECKS: dict[str, str] = {
    "Endpoint": "cauce.serving.endpoints:precheck",
    "Deployment": "cauce.serving.endpoints:precheck",
}
# Kinds applied before others whatever their place in the file: what the others refer to.
ORDER = {"Endpoint": 0, "Rollout": 2}


@dataclass(frozen=True)
class Applied:
    """What applying one document did: ``created``, ``updated`` or ``unchanged``."""

    kind: str
    name: str
    outcome: str


def _applier(kind: str) -> Callable[[Workspace, dict[str, Any]], Applied]:
    for known, target in KINDS:
        if known == kind:
            applier: Callable[[Workspace, dict[str, Any]], Applied] = load_object(target)
            return applier
    raise InvalidInput(
        f"unknown kind {kind!r}", hint=f"known kinds: {', '.join(k for k, _ in KINDS)}"
    )


def read_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a spec file, each a mapping with a ``kind``."""
    import yaml

    if not path.is_file():
        raise NotFound(f"no such spec file: {path}")
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from None
    for number, document in enumerate(documents, 1):
        if not isinstance(document, dict) or "kind" not in document:
            raise InvalidInput(f"{path}: document {number} needs a 'kind' field")
    return documents


def apply_file(path: str | Path, *, workspace: Workspace | None = None) -> list[Applied]:
    """Validate every document of a spec file, then apply each; return what each did."""
    ws = workspace or current()
    documents = sorted(read_documents(Path(path)), key=lambda d: ORDER.get(str(d["kind"]), 1))
    appliers = [_applier(str(d["kind"])) for d in documents]  # unknown kinds fail before any change
    for target in dict.fromkeys(PRECHECKS[k] for d in documents if (k := d["kind"]) in PRECHECKS):
        load_object(target)(ws, documents)
    return [apply(ws, document) for apply, document in zip(appliers, documents, strict=True)]


def read_mapping(source: Any, what: str, missing: type[CauceError] = NotFound) -> tuple[Any, str]:
    """A YAML mapping from a file path, a YAML string or a dict, and how to name it in errors.

    Any other object is returned as it is, for the caller to refuse; a missing file raises
    ``missing`` (NotFound by default) naming it.
    """
    import yaml

    where = what
    if isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        path = Path(source)
        try:
            source = path.read_text()
        except FileNotFoundError:
            raise missing(f"{what} file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read {what} {path}: {exc}") from None
        where = f"{what} {path}"
    if not isinstance(source, str):
        return source, where
    try:
        documents = [d for d in yaml.safe_load_all(source) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    if len(documents) != 1:
        raise InvalidInput(f"{where} must hold one YAML document, not {len(documents)}")
    return documents[0], where


def _looks_like_path(text: str) -> bool:
    if "\n" in text:
        return False
    if text.strip().endswith((".yaml", ".yml")):
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL byte, is no file
        return False


def spec_digest(body: dict[str, Any]) -> str:
    """sha256 of a spec's canonical JSON: the same spec, the same digest."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_spec(
    conn: Connection,
    ws: Workspace,
    table: Table,
    kind: str,
    body: dict[str, Any],
    values: dict[str, Any],
) -> Applied:
    """Insert or update the row of ``table`` named ``body["name"]`` (columns ``spec``,
    ``spec_sha256``, ``updated_at`` and ``values``), audited; an identical spec is unchanged."""
    from sqlalchemy import select

    from cauce.lineage import audit
    from cauce.store import new_id, now_ms

    name, digest, now = body["name"], spec_digest(body), now_ms()
    entity = kind.lower()
    row = conn.execute(select(table).where(table.c.name == name)).first()
    if row is not None and row.spec_sha256 == digest:
        return Applied(kind, name, "unchanged")
    values = {**values, "spec": body, "spec_sha256": digest, "updated_at": now}
    if row is None:
        row_id = new_id()
        conn.execute(table.insert().values(id=row_id, name=name, created_at=now, **values))
        audit.record(conn, ws.user, f"{entity}.create", entity, row_id, after=body)
        return Applied(kind, name, "created")
    conn.execute(table.update().where(table.c.id == row.id).values(**values))
    audit.record(conn, ws.user, f"{entity}.update", entity, row.id, before=row.spec, after=body)
    return Applied(kind, name, "updated")


def validation_error(kind: str, exc: Any) -> InvalidInput:
    """A pydantic ValidationError as an InvalidInput naming the first bad field."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or kind
    return InvalidInput(
        f"{kind} spec: {field}: {first['msg']}",
        details={"field": field, "errors": [e["msg"] for e in exc.errors()]},
    )
