"""Fixtures for the GenAI tests.

A module whose tests only touch records runs them on a local workspace and through a ``cauce
server`` by overriding ``workspace`` with ``seam_workspace``, and ``any_workspace`` with
``seam_any_workspace`` (SQLite, PostgreSQL, then remote); the tests that run a model or an LLM
server stay local.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.genai.upstream import Upstream

from cauce import workspace as workspace_module
from cauce.workspace import Workspace


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A scripted OpenAI-compatible server on loopback (tests/genai/upstream.py)."""
    server = Upstream()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "remote"])
def seam_any_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on SQLite, on PostgreSQL, then through a server."""
    yield from _workspace(request, tmp_path, monkeypatch, request.param)


@pytest.fixture
def remote_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on the session's ``cauce server``, for a test of what it answers."""
    yield from _workspace(request, tmp_path, monkeypatch, "remote")


def _workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> Iterator[Workspace]:
    from cauce.tracking import fluent

    for var in [v for v in os.environ if v.startswith("CAUCE_")]:
        monkeypatch.delenv(var, raising=False)
    if kind == "remote":
        server = request.getfixturevalue("cauce_server")
        monkeypatch.setenv("CAUCE_SERVER_URL", server.new_workspace())
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
