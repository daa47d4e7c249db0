"""Pipelines' tests run on a local workspace and through a ``cauce server``: ``workspace`` is
local then remote, ``any_workspace`` SQLite, PostgreSQL, then remote."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cauce import workspace as workspace_module
from cauce.workspace import Workspace
from remote import TestServer as Server


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """The fresh workspace of each test, local and then remote."""
    return seam_workspace


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "remote"])
def any_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on SQLite, on PostgreSQL, then on a ``cauce server`` (whose store a
    test reads through ``server_side``)."""
    for var in [v for v in os.environ if v.startswith("CAUCE_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAUCE_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("CAUCE_USER", "tester")
    if request.param == "postgres":
        monkeypatch.setenv("CAUCE_DB_URL", request.getfixturevalue("pg_url"))
    elif request.param == "remote":
        server: Server = request.getfixturevalue("cauce_server")
        monkeypatch.setenv("CAUCE_SERVER_URL", server.new_workspace())
    workspace_module.reset()
    try:
        yield workspace_module.current()
    finally:
        workspace_module.reset()
