"""The monitors' tests run on a local workspace and through a ``cauce server``.

``workspace`` is local, then remote; ``any_workspace`` is SQLite, PostgreSQL (marked
``postgres``), then remote. The root conftest's ``store_workspace`` (SQLite and PostgreSQL
only) is for what runs against the store itself: the agent's claims, an alert's actions run in
the foreground (``wait``); its ``remote_workspace`` for what a server refuses. A test that
cannot go through a server says so by asking for ``local_workspace`` or ``store_workspace``.
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
