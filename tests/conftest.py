"""Shared fixtures: a fresh workspace per test, on SQLite and (marked ``postgres``) PostgreSQL.

PostgreSQL tests create a randomly named database on 127.0.0.1:5432 (user ``postgres``, trust
authentication) and drop it afterwards. Without a server they skip with the reason, except under
``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cauce import workspace as workspace_module
from cauce.workspace import Workspace

PG_ADMIN = os.environ.get("CAUCE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    dsn = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True, connect_timeout=3)


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        with _pg_admin_connect():
            return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL at {PG_ADMIN} is not reachable: {type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Skip (or, under CI=true, fail) when PostgreSQL is not running."""
    reason = _pg_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return PG_ADMIN


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"cauce_test_{secrets.token_hex(6)}"
    with _pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        workspace_module.reset()
        with _pg_admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _activate(monkeypatch: pytest.MonkeyPatch, home: Path, db_url: str | None) -> Workspace:
    for var in [v for v in os.environ if v.startswith("CAUCE_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAUCE_HOME", str(home))
    monkeypatch.setenv("CAUCE_USER", "tester")
    if db_url:
        monkeypatch.setenv("CAUCE_DB_URL", db_url)
    workspace_module.reset()
    return workspace_module.current()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A fresh SQLite workspace, made current for the test."""
    ws = _activate(monkeypatch, tmp_path / "ws", None)
    try:
        yield ws
    finally:
        _end_active_runs()
        workspace_module.reset()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on SQLite, then on PostgreSQL: the store suite runs on both."""
    db_url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    ws = _activate(monkeypatch, tmp_path / "ws", db_url)
    try:
        yield ws
    finally:
        _end_active_runs()
        workspace_module.reset()


def _end_active_runs() -> None:
    from cauce.tracking import fluent

    fluent._stack().clear()
