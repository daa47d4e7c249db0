"""The safety benchmarks still run, on small sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_injection_eval_on_part_of_the_held_out_split(tmp_path: Path) -> None:
    """Exit 0 (the target holds); precision and recall per layer and per language."""
    out = tmp_path / "injection.json"
    proc = benchmark("injection_eval.py", tmp_path, "--limit", "400", "--json", str(out))
    assert "target recall >= 0.90 at precision >= 0.95: PASS" in proc.stdout
    result = json.loads(out.read_text())
    assert result["heldout_rows"] == 400 and result["target_met"] is True
    assert set(result["languages"]) == {"en", "es", "fr", "de", "pt"}
    assert result["rules"]["precision"] >= 0.95 and result["whole"]["recall"] >= 0.90
    # Measured, not judged: the time is the benchmark's to report (a loaded CI machine took
    # 2.7 s where an idle one takes 1.5 s), the recall and precision targets are the test's.
    assert result["train_s"] > 0
    assert result["docs"]["paragraphs"] > 100


@pytest.mark.slow
def test_safety_filters_benchmark_few_repetitions(tmp_path: Path) -> None:
    """Exit 0; p50 and p99 of the input filters on a 1,000-token prompt, and a chunk scan."""
    out = tmp_path / "filters.json"
    proc = benchmark("safety_filters.py", tmp_path, "--repetitions", "30", "--json", str(out))
    assert "p50" in proc.stdout and "index chunk" in proc.stdout
    result = json.loads(out.read_text())
    assert 4000 <= result["characters"] <= 5000
    assert len(result["samples_s"]) == 30 and 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["chunk_scan_ms"] > 0 and result["stream_us_per_delta"] > 0
