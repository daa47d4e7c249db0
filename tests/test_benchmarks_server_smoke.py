"""The server benchmark still runs: ``--quick --cauce-only`` in a subprocess, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_server_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """The script exits 0, prints every part and writes JSON; nothing is lost under concurrency."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "server_vs_mlflow.py", tmp_path, "--quick", "--cauce-only", "--json", str(out), timeout=300
    )
    for label in ("SDK log_metric", "search_runs", "concurrent", "targets missed"):
        assert label in proc.stdout
    results = json.loads(out.read_text())
    assert results["mlflow_version"] is None
    sqlite = results["backends"]["sqlite"]
    assert sqlite["calls"]["cauce_sdk.log_metric"]["p50"] > 0
    (search,) = sqlite["search"]["cauce"].values()
    assert search["found"] == search["in_process_found"] > 0
    concurrent = sqlite["concurrent"]
    assert concurrent["errors"] == 0
    assert concurrent["stored"] == concurrent["distinct_steps"] == concurrent["expected"] > 0
