"""Flows: a DAG of nodes (prompt + LLM, Python function, safety check) run line by line.

A ``kind: Flow`` spec names its inputs, its nodes and its outputs; a node takes values from the
flow's inputs and other nodes' outputs with references (``${inputs.question}``,
``${generate.output}``, ``${lookup.output.title}``), which also order the DAG. A node may have
variants (another prompt version, model, parameters): a run picks one per node, and
:func:`cauce.genai.batches.compare` runs them side by side. A Python function decorated with
:func:`flow` is a flow too.

Every run of a line is a trace: ``invoke_agent {flow}`` with one span per node and the LLM
calls beneath. Flow versions are immutable and lineage nodes, linked from the prompt versions
they use. A line runs where it is called (a Python flow's function is imported there); flows and
their versions are records, read and registered through the server for a workspace on one.

Example::

    answer = cauce.flows.load("rag-answer").run({"question": "What is a canary?"})
    answer.outputs["answer"], answer.input_tokens, answer.trace_id
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, select

from cauce.config import load_object
from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.store import insert_ignore, new_id, now_ms
from cauce.store.schema import flow_versions, flows
from cauce.validation import check_int, check_name
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.genai.prompts import PromptVersion
    from cauce.genai.safety.filters import SafetyPolicy
    from cauce.specs import Applied

__all__ = [
    "Flow",
    "FlowBlocked",
    "FlowInfo",
    "FlowSpec",
    "FlowVersion",
    "LineResult",
    "PythonFlow",
    "flow",
    "get_flow",
    "get_version",
    "list_flows",
    "load",
    "pinned_index_version",
    "register",
    "register_python",
    "versions",
]

REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][\w]*)((?:\.[\w-]+)*)\s*\}")
_PARAMETERS = ("temperature", "max_tokens", "top_p", "stop", "seed")


class FlowBlocked(InvalidInput):
    """A safety node with ``action: block`` stopped a line."""

    code = "flow-blocked"


# -- the spec ----------------------------------------------------------------------------------


class FlowInput(BaseModel):
    """An input of the flow."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "integer", "number", "boolean", "array", "object"] = "string"
    default: Any = None
    description: str | None = None


class Node(BaseModel):
    """One node of a flow; which fields it takes depends on its ``type``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["llm", "retrieve", "python", "safety"]
    inputs: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = None
    connection: str | None = None
    model: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    function: str | None = None
    index: str | None = None
    query: str | None = None
    top_k: int = Field(default=4, ge=1, le=100)
    mode: Literal["hybrid", "vector", "text"] = "hybrid"
    where: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None
    blocklist: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    injection: float | None = Field(default=None, ge=0.0, le=1.0)
    action: Literal["flag", "block"] = "flag"
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"{value!r} is not a valid node name (letters, digits, _)")
        if value == "inputs":
            raise ValueError("'inputs' names the flow's inputs, not a node")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} (known: {', '.join(_PARAMETERS)})")
        return value

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a regular expression: {exc}"
                ) from None
        return value

    @model_validator(mode="after")
    def _fields_of_type(self) -> Node:
        need = {
            "llm": ("prompt", "connection"),
            "retrieve": ("index", "query"),
            "python": ("function",),
            "safety": ("text",),
        }
        missing = [f for f in need[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.type} node needs {' and '.join(missing)}")
        if self.type == "safety" and not (
            self.blocklist or self.patterns or self.injection is not None
        ):
            raise ValueError("a safety node needs a blocklist, patterns or an injection threshold")
        for variant, overrides in self.variants.items():
            if "variants" in overrides or "name" in overrides or "type" in overrides:
                raise ValueError(f"variant {variant!r} cannot change the node's name or type")
            Node.model_validate({**self.model_dump(exclude={"variants"}), **overrides})
        return self

    def forms(self) -> list[Node]:
        """The node as written, then as each of its variants makes it."""
        return [self, *(self.variant(name) for name in self.variants)]

    def variant(self, name: str | None) -> Node:
        """This node with a variant's fields in place of its own (None: as written)."""
        if name is None or name == "default":
            return self
        if name not in self.variants:
            known = ", ".join(["default", *self.variants])
            raise InvalidInput(f"node {self.name!r} has no variant {name!r} (it has: {known})")
        return Node.model_validate({**self.model_dump(exclude={"variants"}), **self.variants[name]})


class FlowSpec(BaseModel):
    """A ``kind: Flow`` document."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["Flow"] = "Flow"
    name: str
    description: str | None = None
    inputs: dict[str, FlowInput] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(min_length=1)
    nodes: list[Node] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "flow name")

    @model_validator(mode="after")
    def _graph(self) -> FlowSpec:
        names = [n.name for n in self.nodes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"node {repeated[0]!r} is declared twice")
        for node in self.nodes:
            for form in node.forms():
                for where, value in _fields(form):
                    _check_refs(value, f"nodes.{node.name}.{where}", self.inputs, names)
        for key, value in self.outputs.items():
            _check_refs(value, f"outputs.{key}", self.inputs, names)
        order(self)  # raises on a cycle
        return self


def _fields(node: Node) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [(f"inputs.{k}", v) for k, v in node.inputs.items()]
    if node.text is not None:
        found.append(("text", node.text))
    if node.query is not None:
        found.append(("query", node.query))
    return found


def _refs(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(m.group(1), m.group(2)) for m in REFERENCE.finditer(value)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _check_refs(value: Any, where: str, inputs: dict[str, Any], nodes: list[str]) -> None:
    for head, path in _refs(value):
        if head == "inputs":
            name = path.lstrip(".").split(".")[0]
            if name not in inputs:
                raise ValueError(f"{where}: ${{inputs.{name}}} is not an input of the flow")
        elif head not in nodes:
            raise ValueError(f"{where}: ${{{head}{path}}} names no node")
        elif not path.startswith(".output"):
            raise ValueError(f"{where}: write ${{{head}.output}} to use a node's output")


def order(spec: FlowSpec) -> list[Node]:
    """The nodes in an order that runs each after the nodes it takes values from."""
    by_name = {n.name: n for n in spec.nodes}
    needs = {
        n.name: {
            head
            for form in n.forms()
            for _, value in _fields(form)
            for head, _ in _refs(value)
            if head != "inputs"
        }
        for n in spec.nodes
    }
    done: list[str] = []
    while len(done) < len(by_name):
        ready = [n for n in by_name if n not in done and needs[n] <= set(done)]
        if not ready:
            stuck = sorted(n for n in by_name if n not in done)
            raise ValueError(f"nodes {', '.join(stuck)} take values from each other in a cycle")
        done += ready
    return [by_name[n] for n in done]


# -- running one line --------------------------------------------------------------------------


def trace_name(flow: str) -> str:
    """The name of the trace a run of one line of ``flow`` makes (its root span's)."""
    return f"invoke_agent {flow}"


@dataclass
class LineResult:
    """One run of a flow: its outputs (or error), tokens, cost, latency and trace."""

    outputs: dict[str, Any]
    status: str  # ok | error | timeout
    error: str | None
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cost: float | None
    trace_id: str | None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass
class _Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None

    def add(self, result: Any) -> None:
        if result.usage is not None:
            self.input_tokens += result.usage.input_tokens
            self.output_tokens += result.usage.output_tokens
        if result.cost is not None:
            self.cost = (self.cost or 0.0) + result.cost


_usage: contextvars.ContextVar[_Usage | None] = contextvars.ContextVar("flow_usage", default=None)
# Index versions a line searches instead of the current ones (a canary of a new index version).
_pins: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "flow_index_pins", default=None
)


@dataclass
class Flow:
    """A loaded flow version, ready to run lines."""

    name: str
    version: int
    id: str
    spec: FlowSpec | None = None
    function: Callable[..., Any] | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """``flows:/name/version``."""
        return f"flows:/{self.name}/{self.version}"

    @property
    def connections(self) -> list[str]:
        """The connections its LLM nodes call, every variant's included."""
        return sorted({str(n.connection) for n in _forms(self.spec, "llm")}) if self.spec else []

    def run(
        self,
        inputs: dict[str, Any],
        *,
        variant: str | dict[str, str] | None = None,
        workspace: Workspace | None = None,
        raise_errors: bool = False,
        indexes: dict[str, int] | None = None,
    ) -> LineResult:
        """Run one line: a trace ``invoke_agent {flow}``; an error fails only this line (with
        ``raise_errors``, it is raised). ``indexes`` pins index versions by index name (every
        search, retrieve nodes' and a Python flow's through ``cauce.indexes.query``, reads them)."""
        from cauce.genai import tracing

        ws = workspace or current()
        pinned = _pins.set(dict(indexes or {}))
        usage = _Usage()
        token = _usage.set(usage)
        started = time.perf_counter()
        trace_id: str | None = None
        try:
            with tracing.span(
                trace_name(self.name),
                operation="invoke_agent",
                attributes={
                    "gen_ai.agent.name": self.name,
                    "cauce.flow.version": self.version,
                    "cauce.flow.variant": json.dumps(variant) if variant else None,
                },
                workspace=ws,
            ) as span:
                trace_id = span.trace_id
                span.content("cauce.input", inputs)
                outputs = self._outputs(inputs, variant, ws)
                span.content("cauce.output", outputs)
            status, error = "ok", None
        except CauceError as exc:
            if raise_errors:
                raise
            outputs, status, error = {}, "error", str(exc)
        except Exception as exc:
            if raise_errors:
                raise
            outputs, status, error = {}, "error", f"{type(exc).__name__}: {exc}"
        finally:
            _usage.reset(token)
            _pins.reset(pinned)
        return LineResult(
            outputs=outputs,
            status=status,
            error=error,
            latency_ms=(time.perf_counter() - started) * 1000,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost=usage.cost,
            trace_id=trace_id,
        )

    def input_names(self) -> list[str]:
        """The inputs a line needs: those without a default."""
        if self.spec is not None:
            return [n for n, i in self.spec.inputs.items() if i.default is None]
        import inspect

        assert self.function is not None
        return [
            name
            for name, parameter in inspect.signature(self.function).parameters.items()
            if parameter.default is inspect.Parameter.empty
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]

    def prompt_versions(
        self, variant: str | dict[str, str] | None = None, *, workspace: Workspace | None = None
    ) -> dict[str, PromptVersion]:
        """The prompt version each LLM node uses with ``variant``, as its reference resolves
        now (a label may move later)."""
        from cauce.genai.prompts import load as load_prompt

        if self.spec is None:
            return {}
        chosen = _variants(self.spec, variant)
        found = {}
        for node in self.spec.nodes:
            picked = node.variant(chosen.get(node.name))
            if picked.type == "llm":
                found[node.name] = load_prompt(str(picked.prompt), workspace=workspace)
        return found

    def index_versions(self, *, workspace: Workspace | None = None) -> dict[str, str]:
        """The current version id of each index a retrieve node searches, by node."""
        from cauce.genai.indexes.records import get_version as index_version

        if self.spec is None:
            return {}
        found = {}
        for node in self.spec.nodes:
            if node.type == "retrieve":
                try:
                    found[node.name] = index_version(str(node.index), workspace=workspace).id
                except NotFound:  # not built yet
                    continue
        return found

    def _outputs(
        self, inputs: dict[str, Any], variant: str | dict[str, str] | None, ws: Workspace
    ) -> dict[str, Any]:
        if self.function is not None:
            params = self.variants.get(str(variant), {}) if variant else {}
            if variant and str(variant) not in self.variants:
                known = ", ".join(self.variants) or "none"
                raise InvalidInput(f"flow {self.name!r} has no variant {variant!r} ({known})")
            result = self.function(**inputs, **params)
            return result if isinstance(result, dict) else {"output": result}
        assert self.spec is not None
        chosen = _variants(self.spec, variant)
        values: dict[str, Any] = {"inputs": _checked_inputs(self.spec, inputs)}
        for node in order(self.spec):
            values[node.name] = {
                "output": _run_node(node.variant(chosen.get(node.name)), values, ws)
            }
        return {key: _resolve(ref, values) for key, ref in self.spec.outputs.items()}


def _variants(spec: FlowSpec, variant: str | dict[str, str] | None) -> dict[str, str]:
    """``{"generate": "v2"}`` from a mapping or ``"generate=v2,other=x"``; names checked."""
    if variant is None:
        return {}
    if isinstance(variant, str):
        pairs = [p.split("=", 1) for p in variant.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise InvalidInput(f"a variant is written NODE=VARIANT, not {variant!r}")
        variant = {k.strip(): v.strip() for k, v in pairs}
    nodes = {n.name: n for n in spec.nodes}
    for node, name in variant.items():
        if node not in nodes:
            raise InvalidInput(f"flow {spec.name!r} has no node {node!r}")
        nodes[node].variant(name)
    return variant


def _checked_inputs(spec: FlowSpec, inputs: dict[str, Any]) -> dict[str, Any]:
    extra = sorted(set(inputs) - set(spec.inputs))
    if extra:
        raise InvalidInput(f"flow {spec.name!r} has no input {extra[0]!r}")
    found: dict[str, Any] = {}
    for name, declared in spec.inputs.items():
        if name in inputs and inputs[name] is not None:
            found[name] = inputs[name]
        elif declared.default is not None:
            found[name] = declared.default
        else:
            raise InvalidInput(f"flow {spec.name!r} needs input {name!r}")
    return found


def _resolve(value: Any, values: dict[str, Any]) -> Any:
    """A value with its references replaced: a whole-string reference keeps its type."""
    if isinstance(value, dict):
        return {k: _resolve(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    if not isinstance(value, str):
        return value
    whole = REFERENCE.fullmatch(value.strip())
    if whole:
        return _lookup(whole.group(1), whole.group(2), values)
    return REFERENCE.sub(lambda m: _text(_lookup(m.group(1), m.group(2), values)), value)


def _lookup(head: str, path: str, values: dict[str, Any]) -> Any:
    found = values[head]
    for part in path.lstrip(".").split(".") if path else []:
        if isinstance(found, dict) and part in found:
            found = found[part]
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            raise InvalidInput(f"${{{head}{path}}}: the value has no {part!r}")
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _run_node(node: Node, values: dict[str, Any], ws: Workspace) -> Any:
    from cauce.genai import tracing

    arguments = _resolve(node.inputs, values)
    with tracing.span(
        f"node {node.name}",
        operation="execute_tool" if node.type == "python" else None,
        attributes={"cauce.node.name": node.name, "cauce.node.type": node.type},
        workspace=ws,
    ) as span:
        span.content("cauce.input", arguments)
        if node.type == "llm":
            output: Any = _llm(node, arguments, ws, span)
        elif node.type == "retrieve":
            output = _retrieve(node, _resolve(node.query, values), ws)
        elif node.type == "python":
            function = load_object(str(node.function), what=f"node {node.name!r} function")
            output = function(**arguments)
        else:
            output = _safety(node, _resolve(node.text, values))
            span.set("cauce.safety.flagged", output["flagged"])
        span.content("cauce.output", output)
        return output


def _llm(node: Node, arguments: dict[str, Any], ws: Workspace, span: Any) -> str:
    from cauce.genai import connections, prompts

    prompt = prompts.load(str(node.prompt), workspace=ws)
    span.set("cauce.prompt.version", prompt.uri)
    messages = prompt.render(**arguments)
    defaults = dict(prompt.model_parameters)
    prompt_model = defaults.pop("model", None)
    model = node.model or prompt_model
    parameters = {**defaults, **node.parameters}
    client = connections.client(str(node.connection), workspace=ws)
    result = client.chat(messages, model=model, **parameters)
    usage = _usage.get()
    if usage is not None:
        usage.add(result)
    return result.text


def _retrieve(node: Node, query: Any, ws: Workspace) -> list[dict[str, Any]]:
    from cauce.genai.indexes.registry import query as search

    hits = search(
        str(node.index),
        _text(query),
        k=node.top_k,
        mode=node.mode,
        where=node.where or None,
        workspace=ws,
    )
    return [
        {"id": h.chunk_id, "document": h.document_id, "text": h.text, "score": h.score}
        for h in hits
    ]


def pinned_index_version(name: str) -> int | None:
    """The version of index ``name`` the running line is pinned to, if any."""
    return (_pins.get() or {}).get(name)


def _safety(node: Node, text: Any) -> dict[str, Any]:
    content = _text(text)
    matches: list[str] = []
    if node.blocklist:
        # The safety filters' blocklist: case-insensitive, and on the normalised text too
        # (look-alike letters, leetspeak, spaced-out words).
        verdict = _blocklist(tuple(node.blocklist)).check_output(content)
        matches += [r for d in verdict.decisions for r in d["reasons"]]
    matches += [p for p in node.patterns if re.search(p, content)]
    if node.injection is not None:
        from cauce.genai.safety.injection import detect_injection

        found = detect_injection(content)
        if found.flagged(node.injection):
            matches += [f"injection ({', '.join(found.rules) or 'classifier'})"]
    if matches and node.action == "block":
        raise FlowBlocked(f"node {node.name!r} blocked the line: it matched {', '.join(matches)}")
    return {"flagged": bool(matches), "matches": matches}


@functools.lru_cache(maxsize=64)
def _blocklist(terms: tuple[str, ...]) -> SafetyPolicy:
    from cauce.genai.safety.filters import SafetyPolicy

    return SafetyPolicy.from_spec(
        {"output": [{"filter": "blocklist", "action": "flag", "terms": list(terms)}]}
    )


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

    for node in _forms(spec, "retrieve"):
        if ("Index", str(node.index)) not in declared:
            get_index(str(node.index), workspace=ws)
    for node in _forms(spec, "llm"):
        if ("Prompt", prompts.parse_ref(str(node.prompt))[0]) not in declared:
            prompts.load(str(node.prompt), workspace=ws)
        if ("Connection", str(node.connection)) not in declared:
            connections.get(str(node.connection), workspace=ws)


def _forms(spec: FlowSpec, node_type: str) -> list[Node]:
    """Every form (as written, and each variant) of the nodes of one type."""
    return [form for node in spec.nodes for form in node.forms() if form.type == node_type]


def _link_models(conn: Connection, spec: FlowSpec, version_id: str) -> None:
    """Lineage: the newest version of each registered model an LLM node calls by name (its
    ``model``, else its connection's chat model) → the flow version (a hosted model that is not
    in the registry has no node)."""
    from cauce.store.schema import connections, model_versions, models

    for node in _forms(spec, "llm"):
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

    for node in _forms(spec, "retrieve"):
        found = conn.execute(
            select(indexes.c.current_version_id).where(indexes.c.name == node.index)
        ).scalar()
        if found is not None:
            add_edge(conn, ("index_version", found), ("flow_version", version_id), "used_by")


def _link_prompts(conn: Connection, spec: FlowSpec, version_id: str) -> None:
    """Lineage: each prompt version the flow names, as it resolves now → the flow version."""
    from cauce.genai.prompts import version_row

    for node in _forms(spec, "llm"):
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
