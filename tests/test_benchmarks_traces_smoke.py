"""The trace-receiving benchmark still runs: ``--quick --cauce-only`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_traces_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """The script exits 0 (every span sent is stored), prints its table and writes JSON."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "traces_vs_mlflow.py", tmp_path, "--quick", "--cauce-only", "--json", str(out), timeout=300
    )
    assert "one at a time" in proc.stdout and "spans/s" in proc.stdout
    sqlite = json.loads(out.read_text())["backends"]["sqlite"]
    assert sqlite["sequential"]["cauce"]["spans_per_s"] > 0
    stored = sqlite["stored"]["cauce"]
    assert stored["stored"] == stored["sent"] > 0
