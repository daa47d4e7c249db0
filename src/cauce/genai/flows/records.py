"""Flow versions: recorded immutable (a spec, or a Python flow's function and source), linked
in the lineage to the prompts, indexes and models they use, listed and loaded to run."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from cauce.config import load_object
from cauce.errors import InvalidInput, NotFound
from cauce.genai.flows.lines import Flow, LineResult
from cauce.genai.flows.spec import FlowSpec, node_forms
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.store import insert_ignore, new_id, now_ms
from cauce.store.schema import flow_versions, flows
from cauce.validation import check_int, check_name
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.specs import Applied


# -- Python flows ------------------------------------------------------------------------------


class PythonFlow:
    """A Python function used as a flow: call it as before, or run it traced, or in batches."""

    def __init__(
        self, function: Callable[..., Any], name: str, variants: dict[str, dict[str, Any]]
    ):
        self.function = function
        self.name = check_name(name, "flow name")
        self.variants = variants
        self.target = f"{function.__module__}:{function.__qualname__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def spec(self) -> dict[str, Any]:
        """What identifies this version: the function, its source's sha256 and its variants."""
        try:
            source = inspect.getsource(self.function)
        except (OSError, TypeError):
            source = self.target
        return {
            "python": self.target,
            "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "variants": self.variants,
        }

    def register(self, *, workspace: Workspace | None = None) -> Flow:
        """Record this function's current source as a flow version (the same source: the same
        version)."""
        spec = self.spec()
        found = register_python(
            self.name, spec["python"], spec["source_sha256"], self.variants, workspace=workspace
        )
        return Flow(
            self.name, found.version, found.id, function=self.function, variants=self.variants
        )

    def run(
        self,
        inputs: dict[str, Any],
        *,
        variant: str | None = None,
        workspace: Workspace | None = None,
        raise_errors: bool = False,
        indexes: dict[str, int] | None = None,
    ) -> LineResult:
        """Run one line, traced (the flow version is registered first)."""
        return self.register(workspace=workspace).run(
            inputs,
            variant=variant,
            workspace=workspace,
            raise_errors=raise_errors,
            indexes=indexes,
        )


@operation("PUT /flows/{name}")
def register(name: str, spec: dict[str, Any], *, workspace: Workspace | None = None) -> FlowVersion:
    """Record a ``kind: Flow`` body as flow ``name``'s newest version (the same body: the same
    version), linked to the prompts, indexes and models it uses, as ``cauce apply`` does; the
    prompts, connections and indexes it names must exist."""
    from pydantic import ValidationError

    from cauce.specs import validation_error

    try:
        parsed = FlowSpec.model_validate({**spec, "kind": "Flow", "name": name})
    except ValidationError as exc:
        raise validation_error("Flow", exc, FlowSpec) from None
    ws = workspace or current()
    check_flow(ws, parsed, set())
    with ws.store.write() as conn:
        save_flow(conn, ws, parsed)
        return _flow_version(name, _version_row(conn, name, None))


@operation("POST /flows/{name}/versions")
def register_python(
    name: str,
    python: str,
    source_sha256: str,
    variants: dict[str, dict[str, Any]] | None = None,
    *,
    workspace: Workspace | None = None,
) -> FlowVersion:
    """Record a Python flow's version: its function (``module:qualname``), its source's sha256
    and its variants; the same ones give the same version."""
    check_name(name, "flow name")
    module, _, qualname = python.partition(":") if isinstance(python, str) else ("", "", "")
    if not module or not qualname:
        raise InvalidInput(
            f"python must name a function as module:qualname, not {python!r}",
            details={"field": "python"},
        )
    if not isinstance(source_sha256, str) or len(source_sha256) != 64:
        raise InvalidInput("source_sha256: a sha256", details={"field": "source_sha256"})
    body = {"python": python, "source_sha256": source_sha256, "variants": variants or {}}
    ws = workspace or current()
    with ws.store.write() as conn:
        row, _ = _save_version(conn, ws.user, name, body)
        return _flow_version(name, row)


def flow(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    variants: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """Make a Python function a flow; ``variants`` are keyword arguments a run may add.

    Example::

        @cauce.flow(variants={"short": {"max_tokens": 32}})
        def answer(question: str, max_tokens: int = 128) -> dict:
            ...
    """

    def wrap(fn: Callable[..., Any]) -> PythonFlow:
        return PythonFlow(fn, name or fn.__name__, variants or {})

    return wrap(function) if function is not None else wrap


# -- storing -----------------------------------------------------------------------------------


def save_flow(conn: Connection, ws: Workspace, spec: FlowSpec) -> Applied:
    """Apply a ``kind: Flow`` document in the caller's transaction (``cauce apply``)."""
    from cauce.specs import Applied, Change

    existed = _flow_row(conn, spec.name) is not None
    before = _latest(conn, spec.name) if existed else None
    body = spec.model_dump(mode="json", exclude={"kind"}, exclude_none=True)
    row, created = _save_version(conn, ws.user, spec.name, body)
    if created:
        _link_prompts(conn, spec, row.id)
        _link_indexes(conn, spec, row.id)
        _link_models(conn, spec, row.id)
    if not existed:
        return Applied("Flow", spec.name, "created")
    if not created:
        return Applied("Flow", spec.name, "unchanged")
    old = before.version if before is not None else None
    return Applied("Flow", spec.name, "updated", (Change("version", old, row.version),))


def check_flow(ws: Workspace, spec: FlowSpec, declared: Any) -> None:
    """Refuse a flow whose prompts, connections or indexes neither exist nor are declared
    beside it."""
    from cauce.genai import connections, prompts
    from cauce.genai.indexes.records import get_index
    from cauce.genai.prompts.registry import parse_ref

    for node in node_forms(spec, "retrieve"):
        if ("Index", str(node.index)) not in declared:
            get_index(str(node.index), workspace=ws)
    for node in node_forms(spec, "llm"):
        if ("Prompt", parse_ref(str(node.prompt))[0]) not in declared:
            prompts.load(str(node.prompt), workspace=ws)
        if ("Connection", str(node.connection)) not in declared:
            connections.get(str(node.connection), workspace=ws)


def _link_models(conn: Connection, spec: FlowSpec, version_id: str) -> None:
    """Lineage: the newest version of each registered model an LLM node calls by name (its
    ``model``, else its connection's chat model) → the flow version (a hosted model that is not
    in the registry has no node)."""
    from cauce.store.schema import connections, model_versions, models

    for node in node_forms(spec, "llm"):
        name = node.model
        if name is None:
            stored = conn.execute(
                select(connections.c.spec).where(connections.c.name == node.connection)
            ).scalar()
            name = ((stored or {}).get("models") or {}).get("chat")
        if name is None:
            continue
        found = conn.execute(
            select(model_versions.c.id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == name)
            .order_by(model_versions.c.version.desc())
            .limit(1)
        ).scalar()
        if found is not None:
            add_edge(conn, ("model_version", found), ("flow_version", version_id), "used_by")


def _link_indexes(conn: Connection, spec: FlowSpec, version_id: str) -> None:
    """Lineage: the current version of each index a retrieve node searches → the flow version
    (an index not built yet has none; batch runs link the versions they searched)."""
    from cauce.store.schema import indexes

    for node in node_forms(spec, "retrieve"):
        found = conn.execute(
            select(indexes.c.current_version_id).where(indexes.c.name == node.index)
        ).scalar()
        if found is not None:
            add_edge(conn, ("index_version", found), ("flow_version", version_id), "used_by")


def _link_prompts(conn: Connection, spec: FlowSpec, version_id: str) -> None:
    """Lineage: each prompt version the flow names, as it resolves now → the flow version."""
    from cauce.genai.prompts.registry import version_row

    for node in node_forms(spec, "llm"):
        try:
            found = version_row(conn, str(node.prompt)).id
        except NotFound:
            continue
        add_edge(conn, ("prompt_version", found), ("flow_version", version_id), "used_by")


def _save_version(
    conn: Connection, actor: str, name: str, body: dict[str, Any]
) -> tuple[Any, bool]:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    now = now_ms()
    flow_id = new_id()
    if insert_ignore(
        conn, flows, {"id": flow_id, "name": name, "created_at": now, "updated_at": now}
    ):
        audit.record(conn, actor, "flow.create", "flow", flow_id, after={"name": name})
    else:
        flow_id = conn.execute(
            select(flows.c.id).where(flows.c.name == name).with_for_update()
        ).scalar_one()
    latest = _latest(conn, name)
    if latest is not None and latest.spec_sha256 == digest:
        return latest, False
    version_id = new_id()
    number = (latest.version if latest else 0) + 1
    conn.execute(
        flow_versions.insert().values(
            id=version_id,
            flow_id=flow_id,
            version=number,
            spec=body,
            spec_sha256=digest,
            created_at=now,
            user=actor,
        )
    )
    conn.execute(flows.update().where(flows.c.id == flow_id).values(updated_at=now))
    audit.record(
        conn,
        actor,
        "flow.version.create",
        "flow_version",
        version_id,
        after={"flow": name, "version": number, "spec_sha256": digest},
    )
    if latest is not None:
        add_edge(conn, ("flow_version", latest.id), ("flow_version", version_id), "revised")
    return _latest(conn, name), True


def _flow_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(flows).where(flows.c.name == name)).first()


def _latest(conn: Connection, name: str) -> Any:
    return conn.execute(
        select(flow_versions)
        .join(flows, flows.c.id == flow_versions.c.flow_id)
        .where(flows.c.name == name)
        .order_by(flow_versions.c.version.desc())
        .limit(1)
    ).first()


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowInfo:
    """A flow and its newest version."""

    name: str
    id: str
    latest_version: int
    kind: str  # yaml | python
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class FlowVersion:
    """One stored version of a flow: its spec (a ``kind: Flow`` body, or a Python flow's
    function, source sha256 and variants)."""

    name: str
    version: int
    id: str
    spec: dict[str, Any]
    spec_sha256: str
    created_at: int
    user: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


def load(ref: str, *, workspace: Workspace | None = None) -> Flow:
    """A flow version: ``flows:/name/3``, ``flows:/name`` or ``name`` (the newest).

    A Python flow's version is loaded by importing its function (here, where it runs).
    """
    name, number = _parse(ref)
    found = get_version(name, number, workspace=workspace)
    if "python" in found.spec:
        target = load_object(found.spec["python"], what=f"flow {name!r}")
        function = target.function if isinstance(target, PythonFlow) else target
        return Flow(
            name, found.version, found.id, function=function, variants=found.spec["variants"]
        )
    spec = FlowSpec.model_validate({"kind": "Flow", **found.spec})
    return Flow(name, found.version, found.id, spec=spec)


@operation("GET /flows/{name}/version")
def get_version(
    name: str, version: int | None = None, *, workspace: Workspace | None = None
) -> FlowVersion:
    """A version of a flow: the newest by default."""
    ws = workspace or current()
    if version is not None:
        check_int(version, "flow version")
    with ws.store.read() as conn:
        return _flow_version(name, _version_row(conn, name, version))


@operation("GET /flows/{name}/versions")
def versions(name: str, *, workspace: Workspace | None = None) -> list[FlowVersion]:
    """Every version of a flow, oldest first."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _flow_row(conn, name)
        if row is None:
            raise NotFound(f"no flow named {name!r}", hint="cauce flows list shows them")
        found = conn.execute(
            select(flow_versions)
            .where(flow_versions.c.flow_id == row.id)
            .order_by(flow_versions.c.version)
        ).all()
        return [_flow_version(name, r) for r in found]


def version_row(conn: Connection, ref: str) -> Any:
    """The stored row of the version a reference names, in the caller's transaction;
    NotFound when it names none."""
    return _version_row(conn, *_parse(ref))


def _version_row(conn: Connection, name: str, number: int | None) -> Any:
    if _flow_row(conn, name) is None:
        raise NotFound(f"no flow named {name!r}", hint="cauce flows list shows them")
    query = (
        select(flow_versions)
        .join(flows, flows.c.id == flow_versions.c.flow_id)
        .where(flows.c.name == name)
    )
    if number is None:
        row = conn.execute(query.order_by(flow_versions.c.version.desc()).limit(1)).first()
    else:
        row = conn.execute(query.where(flow_versions.c.version == number)).first()
    if row is None:
        raise NotFound(f"flow {name!r} has no version {number}")
    return row


@operation("GET /flows/{name}")
def get_flow(name: str, *, workspace: Workspace | None = None) -> FlowInfo:
    """A flow with its newest version."""
    ws = workspace or current()
    with ws.store.read() as conn:
        found = _flow_infos(conn, name)
    if not found:
        raise NotFound(f"no flow named {name!r}", hint="cauce flows list shows them")
    return found[0]


@operation("GET /flows")
def list_flows(*, workspace: Workspace | None = None) -> list[FlowInfo]:
    """Every flow with its newest version, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _flow_infos(conn)


def _flow_infos(conn: Connection, name: str | None = None) -> list[FlowInfo]:
    query = select(flows).order_by(flows.c.name)
    if name is not None:
        query = query.where(flows.c.name == name)
    found = []
    for row in conn.execute(query).all():
        latest = _latest(conn, row.name)
        found.append(
            FlowInfo(
                name=row.name,
                id=row.id,
                latest_version=latest.version,
                kind="python" if "python" in latest.spec else "yaml",
                updated_at=row.updated_at,
            )
        )
    return found


def _flow_version(name: str, row: Any) -> FlowVersion:
    return FlowVersion(
        name=name,
        version=row.version,
        id=row.id,
        spec=dict(row.spec),
        spec_sha256=row.spec_sha256,
        created_at=row.created_at,
        user=row.user,
    )


def _parse(ref: str) -> tuple[str, int | None]:
    if not ref.startswith("flows:/"):
        return check_name(ref, "flow name"), None
    rest = ref[len("flows:/") :].strip("/")
    name, _, number = rest.partition("/")
    if number and not number.isdigit():
        raise InvalidInput(f"flow version must be a number in {ref!r}")
    return name, int(number) if number else None
