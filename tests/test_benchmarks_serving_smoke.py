"""The serving benchmark still runs: ``--quick --cauce-only`` in a subprocess, with tiny counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serving_vs_mlflow.py"


@pytest.mark.slow
def test_serving_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """The script exits 0, prints the table and writes JSON with every Cauce measurement."""
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--cauce-only", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
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
