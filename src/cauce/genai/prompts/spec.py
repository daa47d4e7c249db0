"""What a prompt version holds, and how it renders.

A version holds chat messages (``system``/``user``/``assistant``) whose contents are Jinja2
templates, the variables they take (typed), default model parameters and a commit message.
Templates render in Jinja2's sandbox with strict variables: a value is inserted as text, never
evaluated as template code, and a missing or unexpected variable is an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cauce.errors import InvalidInput
from cauce.validation import check_alias, check_name

if TYPE_CHECKING:
    from jinja2 import Template

Role = Literal["system", "user", "assistant"]
VariableType = Literal["string", "integer", "number", "boolean", "array", "object"]


class Message(BaseModel):
    """One chat message; ``content`` is a Jinja2 template."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str


class Variable(BaseModel):
    """A variable the templates take: its type, whether it has a default, what it means."""

    model_config = ConfigDict(extra="forbid")

    type: VariableType = "string"
    description: str | None = None
    default: Any = None


class ModelParameters(BaseModel):
    """Default parameters for the model a prompt is sent to; a caller may override them."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = None
    seed: int | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PromptSpec(BaseModel):
    """A ``kind: Prompt`` document: the content of a version, and the labels to point at it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["Prompt"] = "Prompt"
    name: str
    description: str | None = None
    messages: list[Message] = Field(min_length=1)
    variables: dict[str, Variable | VariableType] | None = None
    model_parameters: ModelParameters = Field(default_factory=ModelParameters)
    commit_message: str | None = None
    labels: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "prompt name")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return [check_alias(v) for v in value]


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a prompt."""

    name: str
    version: int
    id: str
    messages: list[dict[str, str]]
    variables: dict[str, dict[str, Any]]
    model_parameters: dict[str, Any]
    commit_message: str | None
    content_sha256: str
    created_at: int
    user: str
    labels: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """``prompts:/name/version``."""
        return f"prompts:/{self.name}/{self.version}"

    def render(self, **values: Any) -> list[dict[str, str]]:
        """The messages with the variables filled in; defaults fill what is not given."""
        filled = _check_values(self, values)
        return [
            {"role": m["role"], "content": _render(_template(m["content"]), filled, self, i)}
            for i, m in enumerate(self.messages)
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**asdict(self), "uri": self.uri}


@dataclass(frozen=True)
class Prompt:
    """A registered prompt: its newest version (0 before the first) and its labels."""

    name: str
    id: str
    description: str | None
    latest_version: int
    labels: dict[str, int]
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


def variables_of(spec: PromptSpec) -> dict[str, dict[str, Any]]:
    """The declared variables as ``{name: {type, …}}``, or the templates' own as strings."""
    used = _used_variables(spec)
    if spec.variables is None:
        return {name: {"type": "string"} for name in sorted(used)}
    declared: dict[str, dict[str, Any]] = {}
    for name, value in spec.variables.items():
        variable = value if isinstance(value, Variable) else Variable(type=value)
        if not name.isidentifier():
            raise InvalidInput(
                f"prompt {spec.name!r}: variable {name!r} is not a valid name",
                details={"field": f"variables.{name}"},
            )
        if variable.default is not None:
            _check_type(spec.name, name, variable.type, variable.default, "default")
        declared[name] = variable.model_dump(exclude_none=True)
    undeclared = sorted(used - set(declared))
    if undeclared:
        raise InvalidInput(
            f"prompt {spec.name!r}: the messages use {', '.join(undeclared)}, "
            f"which variables does not declare",
            details={"field": "variables", "undeclared": undeclared},
        )
    unused = sorted(set(declared) - used)
    if unused:
        raise InvalidInput(
            f"prompt {spec.name!r}: variables declares {', '.join(unused)}, which no message uses",
            details={"field": "variables", "unused": unused},
        )
    return declared


def _used_variables(spec: PromptSpec) -> set[str]:
    from jinja2 import TemplateSyntaxError, meta

    used: set[str] = set()
    for index, message in enumerate(spec.messages):
        try:
            used |= meta.find_undeclared_variables(_environment().parse(message.content))
        except TemplateSyntaxError as exc:
            raise _syntax_error(spec.name, index, exc) from None
    return used


def compile_messages(spec: PromptSpec) -> None:
    """Refuse a message whose content is not a template Jinja2 compiles, naming it."""
    from jinja2 import TemplateSyntaxError

    for index, message in enumerate(spec.messages):
        try:
            _template(message.content)
        except TemplateSyntaxError as exc:
            raise _syntax_error(spec.name, index, exc) from None


def _syntax_error(name: str, index: int, exc: Any) -> InvalidInput:
    return InvalidInput(
        f"prompt {name!r}: messages.{index}.content is not a valid template "
        f"(line {exc.lineno}: {exc.message})",
        details={"field": f"messages.{index}.content"},
    )


def digest(messages: Any, variables: Any, parameters: Any) -> str:
    """sha256 of a version's content: its messages, variables and model parameters."""
    content = {"messages": messages, "variables": variables, "model_parameters": parameters}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@lru_cache(maxsize=1024)
def _template(content: str) -> Template:
    template: Template = _environment().from_string(content)
    return template


def _render(template: Template, values: dict[str, Any], version: PromptVersion, index: int) -> str:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    try:
        return template.render(values)
    except SecurityError as exc:
        raise InvalidInput(
            f"{version.uri}: messages.{index}.content does something the sandbox forbids: {exc}"
        ) from None
    except TemplateError as exc:
        raise InvalidInput(f"{version.uri}: messages.{index}.content: {exc}") from None


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def _check_values(version: PromptVersion, values: dict[str, Any]) -> dict[str, Any]:
    extra = sorted(set(values) - set(version.variables))
    if extra:
        known = ", ".join(version.variables) or "none"
        raise InvalidInput(
            f"{version.uri} has no variable {', '.join(map(repr, extra))} (it takes: {known})",
            details={"field": extra[0]},
        )
    filled: dict[str, Any] = {}
    for name, variable in version.variables.items():
        if name in values:
            _check_type(version.uri, name, variable["type"], values[name], "value")
            filled[name] = values[name]
        elif "default" in variable:
            filled[name] = variable["default"]
        else:
            raise InvalidInput(
                f"{version.uri} needs variable {name!r} ({variable['type']})",
                details={"field": name},
            )
    return filled


def _check_type(where: str, name: str, kind: str, value: Any, what: str) -> None:
    accepted = _PYTHON_TYPES[kind]
    is_bool = isinstance(value, bool)
    if not isinstance(value, accepted) or (is_bool and kind in ("integer", "number")):
        raise InvalidInput(
            f"{where}: the {what} of variable {name!r} must be {kind}, not {type(value).__name__}",
            details={"field": name},
        )
