"""Running one line of a flow: its nodes in order, each a span of the line's trace."""

from __future__ import annotations

import contextvars
import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.config import load_object
from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.genai.flows.spec import REFERENCE, FlowSpec, Node, node_forms, order
from cauce.genai.tracing.attributes import PROMPT_VERSION
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.genai.prompts import PromptVersion
    from cauce.genai.safety.filters import SafetyPolicy


class FlowBlocked(InvalidInput):
    """A safety node with ``action: block`` stopped a line."""

    code = "flow-blocked"


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
        return (
            sorted({str(n.connection) for n in node_forms(self.spec, "llm")}) if self.spec else []
        )

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
    span.set(PROMPT_VERSION, prompt.uri)
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
