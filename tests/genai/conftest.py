"""Fixtures for the GenAI tests.

A module whose tests only touch records runs them on a local workspace and through a ``cauce
server`` by overriding ``workspace`` with the root conftest's ``seam_workspace``, and
``any_workspace`` with its ``seam_any_workspace`` (SQLite, PostgreSQL, then remote); the tests
that run a model or an LLM server stay local.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.genai.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A scripted OpenAI-compatible server on loopback (tests/genai/upstream.py)."""
    server = Upstream()
    try:
        yield server
    finally:
        server.close()
