"""DataOps' tests run on a local workspace and through a ``cauce server``: ``workspace`` is
local then remote, ``any_workspace`` SQLite, PostgreSQL, then remote."""

from __future__ import annotations

import pytest

from cauce.workspace import Workspace


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """The fresh workspace of each test, local and then remote."""
    return seam_workspace


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """A fresh workspace on SQLite, on PostgreSQL, then on a ``cauce server`` (whose store a
    test reads through ``server_side``)."""
    return seam_any_workspace
