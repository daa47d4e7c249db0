"""benchmarks/pipeline_overhead.py still runs (a short chain, one repeat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline_overhead.py"


@pytest.mark.slow
def test_pipeline_overhead_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "5", "--repeat", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "per step, uncached (5-step chain)" in proc.stdout
    assert "fully cached re-run (5 steps)" in proc.stdout
    results = json.loads(out.read_text())
    assert results["steps"] == 5 and results["per_step_ms"] > 0 and results["cached_rerun_s"] > 0
