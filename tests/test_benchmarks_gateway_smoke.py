"""The gateway benchmark still runs, on a small load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_gateway_overhead_quick(tmp_path: Path) -> None:
    """Exit 0: both sides answered every stream; the overhead figures are there."""
    out = tmp_path / "gateway.json"
    benchmark("gateway_overhead.py", tmp_path, "--quick", "--safety", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["direct"]["ok"] > 0 and result["gateway"]["ok"] > 0
    assert not result["gateway"]["errors"] and set(result["gateway"]["statuses"]) == {"200"}
    assert {"p50", "p99", "paired"} <= set(result["overhead_ms"])
    assert result["ttft_overhead_ms"]["paired"]["pairs"] > 0
