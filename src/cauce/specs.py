"""Declarative specs: one front door for every kind, ``cauce apply -f`` and ``cauce.apply``.

Every kind registers in :data:`KINDS`: its pydantic model, its ``save`` (writes one document in
the caller's transaction and says what changed), an optional ``check`` (reads the store and
refuses references that resolve to nothing) and the kinds it must come after. An apply goes:

1. **read**: every document of the file, of each ``*.yaml``/``*.yml`` of a folder (sorted by
   name, subfolders not read), of a YAML text or of the mappings given;
2. **parse**: each document against its kind's model, no store involved; a bad field is named
   with the document's file and position;
3. **check**: each kind's references against the store and what the same apply declares (an
   Endpoint's traffic may name a Deployment declared beside it);
4. **save**: in one transaction, in dependency order (a kind after the kinds in its ``after``),
   whatever their place in the files. A failure rolls the whole apply back; a dry run rolls it
   back on purpose, so the changes it reports are exactly those an apply would make.

Reading happens on the caller's side; parse, check and save are one operation
(``POST /apply``), so that through a server they run where the store is, in one transaction.

Applying the same documents twice changes nothing the second time. Kinds are named as
``"module:attribute"`` strings and imported when used, so ``import cauce.specs`` stays light.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.config import load_object
from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.operations import operation
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Connection, Table


@dataclass(frozen=True)
class Kind:
    """One kind of spec document and where its parts live, as ``"module:attribute"``.

    ``spec`` is the pydantic model a document is parsed into; ``save(conn, ws, spec) -> Applied``
    writes it inside the caller's transaction; ``check(ws, spec, declared)`` reads the store and
    raises when a reference resolves to nothing, ``declared`` holding the ``(kind, key)`` of every
    document of the same apply. ``key`` names the fields that identify a document (joined by
    ``/``); ``after`` the kinds applied before this one.
    """

    name: str
    spec: str
    save: str
    check: str | None = None
    key: tuple[str, ...] = ("name",)
    after: tuple[str, ...] = ()


KINDS: tuple[Kind, ...] = (
    Kind(
        "Endpoint",
        spec="cauce.serving.specs:EndpointSpec",
        save="cauce.serving.endpoints:save_endpoint",
        check="cauce.serving.endpoints:check_endpoint",
    ),
    Kind(
        "Deployment",
        spec="cauce.serving.specs:DeploymentSpec",
        save="cauce.serving.endpoints:save_deployment",
        check="cauce.serving.endpoints:check_deployment",
        key=("endpoint", "name"),
        after=("Endpoint",),
    ),
    Kind(
        "Rollout",
        spec="cauce.serving.rollouts:RolloutSpec",
        save="cauce.serving.rollouts:save_rollout",
        check="cauce.serving.rollouts:check_rollout",
        key=("endpoint", "candidate"),
        after=("Endpoint", "Deployment"),
    ),
    Kind(
        "Monitor",
        spec="cauce.monitoring.specs:MonitorSpec",
        save="cauce.monitoring.monitors:save_monitor",
        check="cauce.monitoring.monitors:check_monitor",
        after=("Endpoint", "Deployment"),
    ),
    Kind(
        "Prompt",
        spec="cauce.genai.prompts:PromptSpec",
        save="cauce.genai.prompts.registry:save_prompt",
    ),
    Kind(
        "Connection",
        spec="cauce.genai.connections:ConnectionSpec",
        save="cauce.genai.connections:save_connection",
        check="cauce.genai.connections:check_connection",
    ),
    Kind(
        "Index",
        spec="cauce.genai.indexes.registry:IndexSpec",
        save="cauce.genai.indexes.registry:save_index",
        check="cauce.genai.indexes.registry:check_index",
        after=("Connection",),
    ),
    Kind(
        "Flow",
        spec="cauce.genai.flows:FlowSpec",
        save="cauce.genai.flows.records:save_flow",
        check="cauce.genai.flows.records:check_flow",
        after=("Prompt", "Connection", "Index"),
    ),
    Kind(
        "CatalogModel",
        spec="cauce.genai.catalog:CatalogModelSpec",
        save="cauce.genai.catalog:save_catalog_model",
        check="cauce.genai.catalog:check_catalog_model",
        after=("Connection",),
    ),
    Kind(
        "Schedule",
        spec="cauce.automation.schedules:ScheduleSpec",
        save="cauce.automation.schedules:save_schedule",
    ),
)

Declared = frozenset[tuple[str, str]]
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Change:
    """One field of a spec that an apply changes, by its dotted path."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Applied:
    """What applying one document did: ``created``, ``updated`` or ``unchanged``.

    ``changes`` lists the fields an update changed; ``source`` is the document's file and
    position.
    """

    kind: str
    name: str
    outcome: str
    changes: tuple[Change, ...] = ()
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "kind": self.kind,
            "name": self.name,
            "outcome": self.outcome,
            "changes": [c.__dict__ for c in self.changes],
            "source": self.source,
        }


@dataclass(frozen=True)
class Document:
    """One YAML document and where it came from (``churn.yaml document 2``)."""

    body: Any
    where: str = ""


@dataclass
class _Parsed:
    index: int
    document: Document
    kind: Kind
    spec: BaseModel
    key: str


# -- the front door ---------------------------------------------------------------------------


def apply(
    source: str | Path | dict[str, Any] | Iterable[dict[str, Any]],
    *,
    dry_run: bool = False,
    workspace: Workspace | None = None,
) -> list[Applied]:
    """Apply spec documents; return what each did, in the order they were given.

    ``source`` is a spec file, a folder of them, a YAML text, one document as a mapping or a
    list of them. Every document is parsed and checked before anything is written; then all are
    saved in one transaction, in dependency order. With ``dry_run`` the transaction is rolled
    back: the outcomes and field changes are what an apply would do, and nothing changes.

    Example::

        for applied in cauce.apply("specs/", dry_run=True):
            print(applied.kind, applied.name, applied.outcome, applied.changes)
    """
    return list(apply_documents(read(source), dry_run=dry_run, workspace=workspace))


# A tuple, not a list: a list is answered a page at a time, and an apply must run only once.
@operation("POST /apply")
def apply_documents(
    documents: list[Document], *, dry_run: bool = False, workspace: Workspace | None = None
) -> tuple[Applied, ...]:
    """Parse, check and save documents already read (:func:`read`) in one transaction; what
    each did, in their order (``dry_run``: rolled back)."""
    ws = workspace or current()
    if not documents:
        raise InvalidInput("no spec documents to apply", details={"field": "documents"})
    parsed = [_parse(i, d) for i, d in enumerate(documents)]
    _refuse_repeats(parsed)
    declared: Declared = frozenset((p.kind.name, p.key) for p in parsed)
    for p in parsed:
        if p.kind.check is not None:
            check: Callable[[Workspace, Any, Declared], None] = _load(p.kind.check)
            _located(p.document, check, ws, p.spec, declared)
    results: dict[int, Applied] = {}
    with ws.store.write() as conn:
        savepoint = conn.begin_nested()
        for p in sorted(parsed, key=lambda p: (_rank(p.kind.name), p.index)):
            save: Callable[[Connection, Workspace, Any], Applied] = _load(p.kind.save)
            applied = _located(p.document, save, conn, ws, p.spec)
            results[p.index] = replace(applied, source=p.document.where)
        if dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
    return tuple(results[i] for i in range(len(parsed)))


def get_kind(name: str) -> Kind:
    """The registered kind called ``name``; InvalidInput lists the known kinds."""
    for known in KINDS:
        if known.name == name:
            return known
    raise InvalidInput(
        f"unknown kind {name!r}", hint=f"known kinds: {', '.join(k.name for k in KINDS)}"
    )


def _parse(index: int, document: Document) -> _Parsed:
    from pydantic import ValidationError

    body = document.body
    if not isinstance(body, dict) or "kind" not in body:
        raise InvalidInput(f"{document.where or 'a spec document'} needs a 'kind' field")
    found = _located(document, get_kind, str(body["kind"]))
    model: type[BaseModel] = _load(found.spec)
    try:
        spec = model.model_validate(body)
    except ValidationError as exc:
        raise _locate(validation_error(found.name, exc, model), document) from None
    key = "/".join(str(getattr(spec, name)) for name in found.key)
    return _Parsed(index, document, found, spec, key)


def _refuse_repeats(parsed: list[_Parsed]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for p in parsed:
        where = seen.setdefault((p.kind.name, p.key), p.document.where)
        if where != p.document.where:
            raise InvalidInput(
                f"{p.document.where}: {p.kind.name} {p.key} is declared twice (first in {where})"
            )


def _located(document: Document, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, its CauceError saying which document it is about."""
    try:
        return call(*args)
    except CauceError as exc:
        _locate(exc, document)
        raise


def _locate(exc: CauceError, document: Document) -> CauceError:
    """The error with the document's file and position in front of its message."""
    if document.where and not exc.message.startswith(document.where):
        exc.message = f"{document.where}: {exc.message}"
        exc.args = (exc.message,)
        exc.details = {**exc.details, "document": document.where}
    return exc


def _load(target: str) -> Any:
    return load_object(target, what="spec kind")


def _rank(name: str, seen: tuple[str, ...] = ()) -> int:
    """How many kinds stand before ``name`` in the longest ``after`` chain."""
    if name in seen:
        raise InvalidInput(f"spec kinds refer to each other in a cycle: {' → '.join(seen)}")
    after = get_kind(name).after
    return 1 + max((_rank(a, (*seen, name)) for a in after), default=-1)


# -- reading ----------------------------------------------------------------------------------


def read(source: str | Path | dict[str, Any] | Iterable[dict[str, Any]]) -> list[Document]:
    """The documents of a spec file, a folder, a YAML text, a mapping or a list of mappings.

    A one-line string without a colon is a path too: a folder name misspelt is not found,
    rather than read as a YAML text.
    """
    if isinstance(source, str) and "\n" not in source and ":" not in source:
        source = Path(source)
    if isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
            documents = [d for f in files for d in _read_file(f)]
            if not documents:
                raise InvalidInput(
                    f"{path} holds no spec documents",
                    hint="the *.yaml and *.yml files of a folder are read, not its subfolders",
                )
            return documents
        if not path.is_file():
            raise NotFound(f"no such spec file or folder: {path}")
        return _nonempty(_read_file(path), str(path))
    if isinstance(source, str):
        return _nonempty(_read_text(source, ""), "the spec text")
    if isinstance(source, dict):
        source = [source]
    documents = [Document(d, f"document {n}") for n, d in enumerate(source, 1)]
    return _nonempty(documents, "the list of documents")


def _read_file(path: Path) -> list[Document]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read spec file {path}: {exc}") from None
    return _read_text(text, str(path))


def _read_text(text: str, name: str) -> list[Document]:
    import yaml

    try:
        bodies = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        shown = name or "the spec text"
        raise InvalidInput(f"{shown} is not valid YAML: {' '.join(str(exc).split())}") from None
    prefix = f"{name} " if name else ""
    return [Document(body, f"{prefix}document {n}") for n, body in enumerate(bodies, 1)]


def _nonempty(documents: list[Document], what: str) -> list[Document]:
    if not documents:
        raise InvalidInput(f"{what} holds no spec documents")
    return documents


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
        return Path(text).exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte, is no file
        return False


# -- helpers for the kinds' save functions ----------------------------------------------------


def spec_digest(body: dict[str, Any]) -> str:
    """sha256 of a spec's canonical JSON: the same spec, the same digest."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def changes(before: Any, after: Any, path: str = "") -> tuple[Change, ...]:
    """The dotted field paths whose values differ between two spec bodies, with both values.

    Mappings and lists are compared member by member (``analysis.metrics.0.max``); a field on
    one side only is ``None`` on the other.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [*after, *(k for k in before if k not in after)]
        return tuple(c for k in keys for c in changes(before.get(k), after.get(k), _join(path, k)))
    if isinstance(before, list) and isinstance(after, list) and before and after:
        count = max(len(before), len(after))
        return tuple(
            c
            for i in range(count)
            for c in changes(_item(before, i), _item(after, i), _join(path, i))
        )
    return () if before == after else (Change(path, before, after),)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _item(values: list[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


def save_spec(
    conn: Connection,
    ws: Workspace,
    table: Table,
    kind: str,
    body: dict[str, Any],
    values: dict[str, Any],
    *,
    entity: str | None = None,
) -> Applied:
    """Insert or update the row of ``table`` named ``body["name"]`` (columns ``spec``,
    ``spec_sha256``, ``updated_at`` and ``values``), audited as ``entity`` (default: the kind
    in lower case); an identical spec is unchanged."""
    from sqlalchemy import select

    from cauce.lineage import audit
    from cauce.store import new_id, now_ms

    name, digest, now = body["name"], spec_digest(body), now_ms()
    entity = entity or kind.lower()
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
    return Applied(kind, name, "updated", changes(row.spec, body))


def validation_error(kind: str, exc: Any, model: type[BaseModel]) -> InvalidInput:
    """A pydantic ValidationError of ``model`` as an InvalidInput naming the first bad field."""
    from cauce.validation import spec_errors

    errors = spec_errors(exc, model)
    field, message = errors[0]
    return InvalidInput(
        f"{kind} spec: {field}: {message}" if field else f"{kind} spec: {message}",
        details={"field": field or kind, "errors": [m for _, m in errors]},
    )
