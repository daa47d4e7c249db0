"""The checks benchmark still runs: ``--quick --cauce-only --rows 20000`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "checks_vs_pandera.py"


@pytest.mark.slow
def test_checks_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """Exit 0; Cauce's counts match the injected violations; the JSON holds every check."""
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    args = ["--quick", "--cauce-only", "--rows", "20000", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "pandera/Cauce" in proc.stdout
    assert "order_id unique" in proc.stdout
    results = json.loads(out.read_text())
    assert results["rows"] == 20000
    assert results["pandera"] is None
    assert results["disagreements"] == []
    assert len(results["checks"]) == 20
    verdicts = {c["check"]: c["cauce_passed"] for c in results["checks"]}
    assert verdicts["order_id unique"] is False
    assert verdicts["order_id format"] is True  # fails on 1 row, passes thanks to mostly
    assert verdicts["row count"] is True
    assert all(c["cauce_failing"] == c["expected"] for c in results["checks"])
    assert results["cauce"]["median_s"] > 0
