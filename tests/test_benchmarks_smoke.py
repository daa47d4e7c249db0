"""The tracking benchmark still runs: ``--quick --cauce-only`` in a subprocess, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_tracking_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """The script exits 0, prints the table and writes JSON with one row per operation."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "tracking_vs_mlflow.py", tmp_path, "--quick", "--cauce-only", "--json", str(out)
    )
    for label in ("log_metric (per call)", "log_metrics(1000)", "empty run", "import"):
        assert label in proc.stdout
    assert "MLflow/Cauce" in proc.stdout
    results = json.loads(out.read_text())
    assert results["mlflow_version"] is None
    assert [r["operation"] for r in results["rows"]] == [
        "log_metric",
        "log_metrics",
        "empty_run",
        "import",
        "startup",
    ]
    assert results["sides"]["cauce"]["sqlite"] == {"journal_mode": "WAL", "synchronous": "NORMAL"}
    assert results["sides"]["cauce_full"]["sqlite"]["synchronous"] == "FULL"
    assert all(r["cauce_s"] > 0 for r in results["rows"])
