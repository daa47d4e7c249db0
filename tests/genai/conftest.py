"""Fixtures for the GenAI tests."""

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
