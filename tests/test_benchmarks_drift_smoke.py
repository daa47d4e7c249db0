"""The drift benchmark still runs: ``--quick --cauce-only --rows 20000`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_drift_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """Exit 0; Cauce flags exactly the columns drift was injected into; the JSON holds them."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "drift_vs_evidently.py",
        tmp_path,
        "--quick",
        "--cauce-only",
        "--rows",
        "20000",
        "--json",
        str(out),
    )
    assert "Evidently/Cauce" in proc.stdout
    assert "stored reference" in proc.stdout
    results = json.loads(out.read_text())
    assert results["rows"] == 20000
    assert results["evidently"] is None
    assert results["disagreements"] == []
    assert len(results["column_verdicts"]) == 60
    flagged = {c["column"] for c in results["column_verdicts"] if c["cauce_drifted"]}
    assert flagged == set(results["injected"])
    assert len(flagged) == 13
    cauce = results["cauce"]
    assert cauce["reference_rows"] == cauce["current_rows"] == 20000
    assert cauce["full_median_s"] > 0 and cauce["stored_median_s"] > 0
    assert cauce["dataset_drift"] is False
