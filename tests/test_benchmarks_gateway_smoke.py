"""The gateway benchmark still runs, on a small load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [["--safety"], ["--runs-in", "router", "--floor", "--granian"]],
    ids=["safety", "floors"],
)
def test_gateway_overhead_quick(tmp_path: Path, options: list[str]) -> None:
    """Exit 0: both sides answered every stream; the overhead figures are there (and the
    floors': a byte relay and a relay on uvicorn and on granian, each answering every stream)."""
    out = tmp_path / "gateway.json"
    benchmark("gateway_overhead.py", tmp_path, "--quick", *options, "--json", str(out))
    result = json.loads(out.read_text())
    floors = {"relay", "asgi", "granian_asgi", "granian_rsgi"} if "--floor" in options else set()
    assert set(result["floors"]) == floors
    for floor in result["floors"].values():
        assert not floor["errors"] and floor["paired"]["pairs"] > 0
    assert result["direct"]["ok"] > 0 and result["gateway"]["ok"] > 0
    assert not result["gateway"]["errors"] and set(result["gateway"]["statuses"]) == {"200"}
    assert {"p50", "p99", "paired"} <= set(result["overhead_ms"])
    assert result["ttft_overhead_ms"]["paired"]["pairs"] > 0
