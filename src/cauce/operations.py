"""Operations: the SDK functions that reach the store, each callable locally or through a server.

This is the storage seam. An operation is a public SDK function declared with the route it
answers on::

    @operation("POST /runs/{run_id}/metric")
    def log_metric(run_id: str, key: str, value: float, ..., workspace: Workspace | None = None)

Called with a local workspace, it runs as written (SQL store + artifact store). Called with a
workspace on a Cauce server (``CAUCE_SERVER_URL``), its arguments travel as JSON to that route
and its result comes back as the type it is annotated with. ``cauce server`` builds its REST
routes from this same registry, so the two implementations cannot drift apart. A function that
answers a list is answered a page at a time by the server and re-assembled by the client.

Arguments named in ``caller_side`` are filled where the call is made, before it travels (the
git commit and entry point of the process that starts a run, say), so that the server does not
put its own in their place.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from cauce.errors import InvalidInput
from cauce.validation import INT64_MAX, INT64_MIN
from cauce.workspace import Workspace, current

__all__ = ["OPERATIONS", "ROLES", "Operation", "operation"]

ROLES = ("viewer", "editor", "admin")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, eq=False)
class Operation:
    """One SDK function and the REST route that answers it."""

    name: str
    method: str
    path: str
    role: str
    func: Callable[..., Any]
    caller_side: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    idempotent: bool = False

    @cached_property
    def signature(self) -> inspect.Signature:
        """The function's signature."""
        return inspect.signature(self.func)

    @cached_property
    def path_params(self) -> tuple[str, ...]:
        """The parameters that are part of the path, in order."""
        return tuple(re.findall(r"{(\w+)}", self.path))

    @cached_property
    def params(self) -> dict[str, Any]:
        """Each parameter that travels (all but ``workspace``), with its resolved type."""
        return {
            name: self._resolve(p.annotation)
            for name, p in self.signature.parameters.items()
            if name != "workspace"
        }

    @cached_property
    def required(self) -> tuple[str, ...]:
        """The parameters without a default."""
        return tuple(
            name
            for name, p in self.signature.parameters.items()
            if name in self.params and p.default is p.empty
        )

    @cached_property
    def scalars(self) -> frozenset[str]:
        """The parameters whose type is a plain value (text, number, boolean, or None)."""
        plain = {"string", "number", "integer", "boolean", "null"}

        def kinds(schema: dict[str, Any]) -> set[str]:
            if "anyOf" in schema:
                return set().union(*(kinds(s) for s in schema["anyOf"]))
            kind = schema.get("type")
            return {kind} if isinstance(kind, str) else {"other"}

        return frozenset(
            name for name in self.params if kinds(self.adapter(name).json_schema()) <= plain
        )

    @cached_property
    def paged(self) -> bool:
        """Whether the function answers a list (its route then answers it a page at a time)."""
        import typing

        return typing.get_origin(self.returns) is list

    @cached_property
    def returns(self) -> Any:
        """The resolved return type (``None`` for a function that returns nothing)."""
        annotation = self.signature.return_annotation
        if annotation in (None, "None", inspect.Signature.empty):
            return None
        return self._resolve(annotation)

    def _resolve(self, annotation: Any) -> Any:
        if annotation is inspect.Parameter.empty:
            return Any
        if not isinstance(annotation, str):
            return annotation
        namespace = dict(self.func.__globals__)
        namespace.setdefault("Workspace", Workspace)
        try:
            return eval(annotation, namespace)
        except NameError as exc:
            raise TypeError(
                f"operation {self.name}: cannot resolve the annotation {annotation!r} ({exc}); "
                f"import the name at module level"
            ) from None

    def adapter(self, name: str) -> Any:
        """The pydantic TypeAdapter of a parameter (or of the result, for ``"return"``)."""
        return _adapter(self, name)

    def encode_args(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments as JSON values, caller-side ones filled in; defaults left out."""
        bound = self.signature.bind(*args, **kwargs)
        values = {k: v for k, v in bound.arguments.items() if k != "workspace"}
        for name, fill in self.caller_side.items():
            if values.get(name) is None:
                values[name] = fill()
        return {
            name: self.adapter(name).dump_python(value, mode="json", fallback=str, warnings=False)
            for name, value in values.items()
        }

    def decode_args(self, values: Mapping[str, Any], *, lenient: bool = True) -> dict[str, Any]:
        """JSON values back into the parameters' types; an unknown or bad one is InvalidInput.

        ``lenient`` passes a scalar that does not fit through unchanged: the function checks it
        itself and raises the same error as a local call would.
        """
        from pydantic import ValidationError

        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise InvalidInput(
                f"unknown parameter {', '.join(unknown)} for {self.method} {self.path}",
                details={"field": unknown[0], "known": sorted(self.params)},
            )
        missing = [n for n in self.required if n not in values]
        if missing:
            raise InvalidInput(
                f"{missing[0]} is required by {self.method} {self.path}",
                details={"field": missing[0]},
            )
        decoded = {}
        problems: list[tuple[str, str]] = []  # every bad field of every parameter, in order
        for name, value in values.items():
            try:
                decoded[name] = self.adapter(name).validate_python(value)
            except ValidationError as exc:
                if lenient and name in self.scalars and _is_scalar(value):
                    decoded[name] = value
                    continue
                problems += [
                    (".".join(str(p) for p in (name, *e["loc"])), e["msg"]) for e in exc.errors()
                ]
                continue
            number = decoded[name]
            if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
                # No store column holds it: refused here rather than overflowing in SQL.
                problems.append((name, f"{number} is out of the 64-bit integer range"))
        if problems:
            where, message = problems[0]
            raise InvalidInput(
                f"{where}: {message}",
                details={"field": where, "errors": [f"{w}: {m}" for w, m in problems]},
            )
        return decoded

    def encode_result(self, value: Any) -> Any:
        """The function's result as a JSON value."""
        if self.returns is None:
            return None
        return self.adapter("return").dump_python(value, mode="json")

    def decode_result(self, value: Any) -> Any:
        """A JSON result back into the function's return type."""
        if self.returns is None:
            return None
        return self.adapter("return").validate_python(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


@functools.cache
def _adapter(op: Operation, name: str) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(op.returns if name == "return" else op.params[name])


OPERATIONS: dict[str, Operation] = {}
_ROUTES: dict[tuple[str, str], str] = {}


def operation(
    route: str,
    *,
    role: str | None = None,
    caller_side: Mapping[str, Callable[[], Any]] | None = None,
    idempotent: bool | None = None,
) -> Callable[[F], F]:
    """Declare an SDK function an operation answered on ``route`` ("METHOD /path/{param}").

    ``role`` defaults to viewer for GET and editor otherwise; ``idempotent`` (may be retried
    after a lost answer) defaults to true for GET, PUT and DELETE.
    """
    method, _, path = route.partition(" ")
    if method not in METHODS or not path.startswith("/"):
        raise ValueError(f"route must be 'METHOD /path', not {route!r}")
    role = role or ("viewer" if method == "GET" else "editor")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")

    def decorate(func: F) -> F:
        name = f"{func.__module__.removeprefix('cauce.')}.{func.__name__}"
        op = Operation(
            name=name,
            method=method,
            path=path,
            role=role,
            func=func,
            caller_side=dict(caller_side or {}),
            idempotent=method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent,
        )
        taken = _ROUTES.get((method, path))
        if taken is not None and taken != name:
            raise ValueError(f"{route} is already the route of {taken}")
        missing = [p for p in op.path_params if p not in op.signature.parameters]
        if missing or "workspace" not in op.signature.parameters:
            raise ValueError(
                f"{name}: {missing} and `workspace` must be parameters of the function"
            )
        _ROUTES[(method, path)] = name
        OPERATIONS[name] = op

        # Where ``workspace`` sits when it is passed by position (``walk(ws, kind, id)``).
        at = list(op.signature.parameters).index("workspace")

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            ws = kwargs.get("workspace") or (args[at] if len(args) > at else None) or current()
            if ws.settings.server_url is None:
                return func(*args, **kwargs)
            return ws.server.call(op, args, kwargs)

        call.operation = op  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return decorate
