"""The checks benchmark still runs: ``--quick --no-pandera --rows 20000`` in a subprocess (Cauce
and the hand-written floor query), and ``--cauce-only``; a disagreement is reported."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from clitools import BENCHMARKS, benchmark


def run(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """The benchmark at 20,000 rows with ``args``: its stdout and its JSON results."""
    out = tmp_path / "results.json"
    proc = benchmark(
        "checks_vs_pandera.py", tmp_path, "--quick", "--rows", "20000", "--json", str(out), *args
    )
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_checks_benchmark_quick_with_floor(tmp_path: Path) -> None:
    """Exit 0; Cauce's and the floor's counts match the injected violations; both ratios."""
    stdout, results = run(tmp_path, "--no-pandera")
    assert "Cauce/floor" in stdout
    assert "pandera/Cauce" in stdout
    assert "order_id unique" in stdout
    assert results["rows"] == 20000
    assert results["pandera"] is None
    assert results["disagreements"] == []
    assert results["cauce"]["stored_file"]["same_column_chunks"] is True
    assert len(results["checks"]) == 20
    verdicts = {c["check"]: (c["cauce_passed"], c["floor_passed"]) for c in results["checks"]}
    assert verdicts["order_id unique"] == (False, False)
    assert verdicts["order_id format"] == (True, True)  # fails on 1 row, passes thanks to mostly
    assert verdicts["row count"] == (True, True)
    assert all(c["cauce_failing"] == c["expected"] for c in results["checks"])
    assert all(c["floor_failing"] == c["expected"] for c in results["checks"])
    floor = results["floor"]
    assert floor["rows"] == 20000
    assert floor["threads"] >= 1
    assert "GROUP BY order_id HAVING count(*) > 1" in floor["query"]
    assert len(floor["samples_s"]) == len(results["cauce"]["samples_s"]) == 2
    ratio = results["ratios"]["Cauce/floor"]
    assert ratio["target"] == "<= 1.5x"
    assert ratio["value"] == pytest.approx(results["cauce"]["median_s"] / floor["median_s"])
    assert len(ratio["per_turn"]) == 2
    assert "pandera/Cauce" not in results["ratios"]


@pytest.mark.slow
def test_checks_benchmark_cauce_only(tmp_path: Path) -> None:
    """--cauce-only runs neither the floor nor pandera, and has no ratio to judge."""
    _, results = run(tmp_path, "--cauce-only")
    assert results["floor"] is None
    assert results["pandera"] is None
    assert results["ratios"] == {}
    assert results["targets_met"] is None
    assert results["disagreements"] == []
    assert results["cauce"]["median_s"] > 0


def test_checks_benchmark_reports_a_count_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A floor or pandera count unlike Cauce's is a disagreement (the script then exits 1)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("checks_vs_pandera")
    rows = 20000
    expected = bench.expected_failing(rows)
    cauce = {
        "rows": rows,
        "stored_file": {"same_column_chunks": True},
        "checks": {
            s.name: {
                "failing": None if s.kind == "row_count" else expected[s.name],
                "passed": True
                if s.kind == "row_count"
                else bench.verdict(expected[s.name], rows, s.mostly),
            }
            for s in bench.SUITE
        },
    }
    floor = {"rows": rows, "failing": dict(expected)}
    pandera = {"rows": rows, "failing": dict(expected), "failed": []}
    _, problems = bench.compare(rows, cauce, floor, pandera)
    assert problems == []

    off = copy.deepcopy(floor)
    off["failing"]["order_id unique"] -= 1  # counting each repeated value once, not every copy
    _, problems = bench.compare(rows, cauce, off, pandera)
    assert len(problems) == 1
    assert problems[0].startswith("order_id unique: Cauce 4 failing (FAIL), floor 3 failing")

    short = {**pandera, "rows": rows - 1}
    _, problems = bench.compare(rows, cauce, floor, short)
    assert "pandera counts 19999 rows, Cauce 20000" in problems

    cauce["stored_file"]["same_column_chunks"] = False  # Cauce would scan other pages
    _, problems = bench.compare(rows, cauce, floor, pandera)
    assert problems == ["Cauce's stored copy of the data has other column chunks than the file"]
