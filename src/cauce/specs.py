"""Declarative specs: YAML documents whose ``kind`` picks a pydantic schema, applied idempotently.

``cauce apply -f FILE`` reads every document of the file, validates each against its kind (a bad
field is named in the error, with the document's position), then applies them one by one.
Applying the same file twice changes nothing the second time. Kinds are registered here as
``(kind, "module:apply_function")`` and imported when used. Endpoints are applied first and
rollouts last, wherever they stand in the file, since deployments and rollouts refer to them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.errors import InvalidInput, NotFound
from cauce.workspace import Workspace, current

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


def _function(target: str) -> Any:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def _applier(kind: str) -> Callable[[Workspace, dict[str, Any]], Applied]:
    for known, target in KINDS:
        if known == kind:
            applier: Callable[[Workspace, dict[str, Any]], Applied] = _function(target)
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
        _function(target)(ws, documents)
    return [apply(ws, document) for apply, document in zip(appliers, documents, strict=True)]


def validation_error(kind: str, exc: Any) -> InvalidInput:
    """A pydantic ValidationError as an InvalidInput naming the first bad field."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or kind
    return InvalidInput(
        f"{kind} spec: {field}: {first['msg']}",
        details={"field": field, "errors": [e["msg"] for e in exc.errors()]},
    )
