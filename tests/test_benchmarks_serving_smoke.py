"""The serving benchmark still runs: ``--quick --cauce-only`` in a subprocess, with tiny counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_serving_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """The script exits 0, prints the table and writes JSON with every Cauce measurement."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "serving_vs_mlflow.py", tmp_path, "--quick", "--cauce-only", "--json", str(out), timeout=300
    )
    for label in (
        "throughput",
        "router overhead",
        "batching on vs off",
        "server CPU time per answered request",
    ):
        assert label in proc.stdout
    results = json.loads(out.read_text())
    assert results.get("mlflow_version") is None
    assert [r["measurement"] for r in results["rows"]] == [
        "throughput",
        "throughput_batching",
        "router_overhead",
        "batching",
    ]
    for part in ("throughput", "batching"):
        for side in results[part].values():
            assert side["ok"] > 0 and side["failed"] == 0
            assert side["throughput_rps"] > 0
    for side in results["latency"].values():
        assert side["ok"] > 0 and side["failed"] == 0
    assert results["answers"]["cauce"]["status"] == 200
