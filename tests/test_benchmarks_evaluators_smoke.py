"""The evaluator benchmark still runs: ``--quick --cauce-only --rows 300`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_evaluator_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """Exit 0; every Cauce evaluator timed over the generated rows; no ragas side."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "evaluators_vs_ragas.py",
        tmp_path,
        "--cauce-only",
        "--rows",
        "300",
        "--reps",
        "1",
        "--json",
        str(out),
    )
    assert "rouge_l" in proc.stdout and "ndcg@10" in proc.stdout
    results = json.loads(out.read_text())
    assert results["rows"] == 300 and results["ragas"] is None
    cauce = results["cauce"]
    assert cauce["rows"] == 300
    assert all(seconds > 0 for seconds in cauce["median_s"].values())
    assert len(cauce["values"]["bleu"]) == 300
    assert all(0.0 <= v <= 1.0 for v in cauce["values"]["rouge_l"])
