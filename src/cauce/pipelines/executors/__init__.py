"""Executors run pipeline steps; each is registered here as ``(name, "module:Class")``.

Backends are imported on first use, so that choosing ``local`` never imports the process pool
(or Ray).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cauce.config import load_object
from cauce.errors import InvalidInput

if TYPE_CHECKING:
    from cauce.pipelines.executors.base import Executor
    from cauce.workspace import Workspace

EXECUTORS: tuple[tuple[str, str], ...] = (
    ("local", "cauce.pipelines.executors.local:LocalExecutor"),
    ("process", "cauce.pipelines.executors.process:ProcessExecutor"),
    ("ray", "cauce.pipelines.executors.ray:RayExecutor"),
)


def names() -> list[str]:
    """The registered executor names."""
    return [name for name, _ in EXECUTORS]


def executor_class(name: str) -> type[Executor]:
    """The executor class registered as ``name``; InvalidInput for an unknown name."""
    for registered, path in EXECUTORS:
        if registered == name:
            cls: Any = load_object(path, what="executor")
            return cls  # type: ignore[no-any-return]
    raise InvalidInput(
        f"unknown executor {name!r} (choose one of: {', '.join(names())})",
        code="unknown-executor",
    )


def create(name: str, workspace: Workspace, max_workers: int | None = None) -> Executor:
    """A new executor of the named kind."""
    return executor_class(name)(workspace, max_workers=max_workers)
