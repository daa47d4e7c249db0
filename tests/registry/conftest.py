"""The registry's tests run on a local workspace and through a ``cauce server``.

``workspace`` is local, then remote; ``any_workspace`` is SQLite, PostgreSQL (marked
``postgres``), then remote; ``store_workspace`` (the root conftest's) is SQLite and PostgreSQL
only, for the tests that are about the store itself (a migration's rows, a transaction failed
on purpose).
"""

from __future__ import annotations

import pytest

from cauce.workspace import Workspace


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """The fresh workspace of each test, local and then remote."""
    return seam_workspace


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """A fresh workspace on SQLite, on PostgreSQL, then through a server."""
    return seam_any_workspace
