"""The checks benchmark still runs: ``--quick --cauce-only --rows 20000`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_checks_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """Exit 0; Cauce's counts match the injected violations; the JSON holds every check."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "checks_vs_pandera.py",
        tmp_path,
        "--quick",
        "--cauce-only",
        "--rows",
        "20000",
        "--json",
        str(out),
    )
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
