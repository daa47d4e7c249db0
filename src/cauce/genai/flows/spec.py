"""A flow's spec: a ``kind: Flow`` document, its nodes and the references that order them."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cauce.errors import InvalidInput
from cauce.validation import check_name

REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][\w]*)((?:\.[\w-]+)*)\s*\}")
_PARAMETERS = ("temperature", "max_tokens", "top_p", "stop", "seed")


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


def node_forms(spec: FlowSpec, node_type: str) -> list[Node]:
    """Every form (as written, and each variant) of the nodes of one type."""
    return [form for node in spec.nodes for form in node.forms() if form.type == node_type]
