"""The UI benchmark still runs: a few runs, Cauce's side only, in a real Chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_ui_benchmark_cauce_only(tmp_path: Path) -> None:
    """It exits 0, prints each measurement and writes JSON: every run shown, the chart drawn
    downsampled."""
    if shutil.which("chromium") is None:
        why = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(why + ": .ci/run installs it")
        pytest.skip(why)
    out = tmp_path / "results.json"
    proc = benchmark("ui_vs_mlflow.py", tmp_path, "--runs", "40", "--rounds", "1",
                     "--cauce-only", "--json", str(out), timeout=300)  # fmt: skip
    assert "Cauce runs page" in proc.stdout and "Cauce chart of 100,000 steps" in proc.stdout
    results = json.loads(out.read_text())
    [page] = results["cauce_runs_page"]["samples"]
    assert page["rows"] == 40 and page["ready_ms"] > 0
    [chart] = results["cauce_chart"]["samples"]
    assert 0 < chart["points"] <= 1000
