"""DataOps' tests run twice: on a local workspace and through a ``cauce server``."""

from __future__ import annotations

import pytest

from cauce.workspace import Workspace


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """The fresh workspace of each test, local and then remote."""
    return seam_workspace
