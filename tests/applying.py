"""Specs applied for a test that runs in both modes.

``cauce.apply`` does not go through the storage seam yet: a test on a remote workspace applies
its specs on the server's side of it (``server_side``). Once ``apply`` is an operation,
:func:`apply_spec` is ``apply(document, workspace=ws)`` and the tests that use it do not change.

Importable from every test module: pytest puts this folder (the root conftest's) on sys.path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauce.specs import Applied, apply
from cauce.workspace import Workspace, current
from remote import server_side


def apply_spec(
    document: dict[str, Any] | str | Path, workspace: Workspace | None = None
) -> list[Applied]:
    """``cauce.apply`` of one document or file, where the test's workspace keeps its specs."""
    return apply(document, workspace=server_side(workspace or current()))
