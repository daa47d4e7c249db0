"""The monitors' tests run on a local workspace and through a ``cauce server``.

``workspace`` is local, then remote; ``any_workspace`` is SQLite, PostgreSQL (marked
``postgres``), then remote; ``store_workspace`` is SQLite and PostgreSQL only, for what runs
against the store itself: the agent's claims, an alert's actions run in the foreground
(``wait``). A module whose tests cannot go through a server yet says so by asking for
``local_workspace`` or ``store_workspace``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cauce import workspace as workspace_module
from cauce.workspace import Workspace


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """The fresh workspace of each test, local and then remote."""
    return seam_workspace


def _fresh(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> Iterator[Workspace]:
    from cauce.tracking import fluent

    for var in [v for v in os.environ if v.startswith("CAUCE_")]:
        monkeypatch.delenv(var, raising=False)
    if kind == "remote":
        monkeypatch.setenv(
            "CAUCE_SERVER_URL", request.getfixturevalue("cauce_server").new_workspace()
        )
    if kind == "postgres":
        monkeypatch.setenv("CAUCE_DB_URL", request.getfixturevalue("pg_url"))
    monkeypatch.setenv("CAUCE_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("CAUCE_USER", "tester")
    workspace_module.reset()
    try:
        yield workspace_module.current()
    finally:
        fluent._stack().clear()
        workspace_module.reset()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "remote"])
def any_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on SQLite, on PostgreSQL, then through a server."""
    yield from _fresh(request, tmp_path, monkeypatch, request.param)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh local workspace on SQLite, then on PostgreSQL."""
    yield from _fresh(request, tmp_path, monkeypatch, request.param)


@pytest.fixture
def remote_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on a server only: for what a server refuses."""
    yield from _fresh(request, tmp_path, monkeypatch, "remote")
