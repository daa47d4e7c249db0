"""The DAG of one pipeline call, inferred by tracing the pipeline function.

While the function runs, every step call adds a node and returns a :class:`Placeholder`; a
placeholder passed (directly) as a step argument is an edge. Nodes are kept in call order, which
is a topological order: a placeholder exists only once its step has been called.
"""

from __future__ import annotations

import contextvars
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput

if TYPE_CHECKING:
    from cauce.pipelines.decorators import Pipeline, Step


@dataclass(frozen=True)
class Placeholder:
    """The future output of a step inside a pipeline being traced."""

    node: str

    def __repr__(self) -> str:
        return f"<output of step {self.node}>"

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"the output of step {self.node!r} is not known while the pipeline is declared: "
            "branch inside a step, not in the pipeline function"
        )


@dataclass
class Node:
    """One step call: its unique name in the pipeline, the step and its bound arguments."""

    name: str
    step: Step
    # argument -> Placeholder (an edge) or a constant
    arguments: dict[str, Any]

    @property
    def deps(self) -> list[str]:
        """The nodes whose outputs this one takes, in argument order, once each."""
        seen: list[str] = []
        for value in self.arguments.values():
            if isinstance(value, Placeholder) and value.node not in seen:
                seen.append(value.node)
        return seen


@dataclass
class Graph:
    """The nodes of one pipeline call (in a topological order) and what the function returned."""

    nodes: dict[str, Node] = field(default_factory=dict)
    result: Any = None

    def dependents(self, name: str) -> set[str]:
        """Every node downstream of ``name``."""
        found: set[str] = set()
        for node in self.nodes.values():  # topological order: one pass suffices
            if any(dep == name or dep in found for dep in node.deps):
                found.add(node.name)
        return found


class _Builder:
    def __init__(self) -> None:
        self.graph = Graph()
        self.counts: dict[str, int] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Placeholder:
        signature = step.signature
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = [k for k in kwargs if k not in signature.parameters]
        if unknown and not takes_any:
            raise InvalidInput(
                f"step {step.name!r} takes no argument {unknown[0]!r} "
                f"(it takes: {', '.join(signature.parameters) or 'none'})",
                code="unknown-parameter",
                details={"step": step.name, "argument": unknown[0]},
            )
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {step.name!r}: {exc}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for key, value in arguments.items():
            if not isinstance(value, Placeholder) and _nested_placeholder(value):
                raise InvalidInput(
                    f"step {step.name!r}: argument {key!r} holds a step output inside a "
                    "container; pass step outputs directly as arguments"
                )
        count = self.counts.get(step.name, 0) + 1
        self.counts[step.name] = count
        name = step.name if count == 1 else f"{step.name}_{count}"
        self.graph.nodes[name] = Node(name, step, arguments)
        return Placeholder(name)


_current: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar(
    "cauce_pipeline_builder", default=None
)


def current_builder() -> _Builder | None:
    """The builder of the pipeline being traced in this context, if any."""
    return _current.get()


def trace(pipeline: Pipeline, arguments: dict[str, Any]) -> Graph:
    """Call the pipeline function with bound ``arguments`` and return the DAG its calls form."""
    builder = _Builder()
    token = _current.set(builder)
    try:
        bound = inspect.BoundArguments(pipeline.signature, arguments)
        builder.graph.result = pipeline.fn(*bound.args, **bound.kwargs)
    finally:
        _current.reset(token)
    if not builder.graph.nodes:
        raise InvalidInput(f"pipeline {pipeline.name!r} calls no step")
    return builder.graph


def call_arguments(step: Step, arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments for calling the step function with bound arguments."""
    bound = inspect.BoundArguments(step.signature, arguments)
    return bound.args, bound.kwargs


def _nested_placeholder(value: Any) -> bool:
    if isinstance(value, Placeholder):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_nested_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(_nested_placeholder(v) for v in value.values())
    return False
