"""What a test needs beyond the core: skipped with the reason on a newcomer's machine, a failure
under ``CI=true``, where every optional dependency and service must be there.

Importable from every test module: pytest puts this folder (the root conftest's) on sys.path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``): nothing may be skipped for lack of something."""
    return os.environ.get("CI") == "true"


def missing(reason: str) -> None:
    """Skip the test with ``reason``, or fail it under ``CI=true``."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # a module that needs it skips whole


def need(module: str, extra: str | None = None) -> ModuleType:
    """The imported ``module``; when it is not installed, :func:`missing` says which extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        where = f" (pip install -e '.[{extra}]')" if extra else ""
        missing(f"{module} is not installed{where}: {exc}")
        raise  # not reached: missing() skips or fails
