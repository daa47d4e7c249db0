"""The checks benchmark still runs: ``--quick --no-pandera --rows 20000`` in a subprocess (Cauce
and the hand-written floor queries), and ``--cauce-only``; a disagreement is reported; every
floor variant counts every copy of a repeated value."""

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
    assert set(floor["variants"]) == {"group", "sort", "hash-sort"}
    assert "floor variants, same turns" in stdout
    fastest = min(floor["variants"].values(), key=lambda v: v["median_s"])
    assert floor["query"] == fastest["query"] == floor["variants"][floor["variant"]]["query"]
    assert floor["median_s"] == fastest["median_s"]
    assert floor["samples_s"] == fastest["samples_s"]
    assert all(len(v["samples_s"]) == 2 for v in floor["variants"].values())
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


def test_every_floor_variant_counts_every_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value three times, a pair and nulls: each variant of the floor's `unique` counts the 5
    copies and no null, as Cauce's check does (the injected data only has pairs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("checks_vs_pandera")
    floor_module = importlib.import_module("checks_floor")
    data = tmp_path / "data.parquet"
    bench.generate(data, 20000, seed=3)
    table = pq.read_table(data)
    ids = table.column("order_id").to_pylist()
    ids = [f"ORD-{i:010d}" for i in range(len(ids))]  # no pair left from the generator
    ids[10] = ids[20] = ids[30] = "ORD-0000000030"
    ids[40] = ids[50] = "ORD-0000000050"
    ids[60] = ids[70] = None
    column = table.schema.get_field_index("order_id")
    pq.write_table(table.set_column(column, "order_id", pa.array(ids, pa.string())), data)

    floor = floor_module.Floor(data, reps=1).result()  # exits if two variants disagree
    assert set(floor["variants"]) == {"group", "sort", "hash-sort"}
    assert floor["failing"]["order_id unique"] == 5
    assert floor["failing"]["order_id present"] == 2
    assert floor["rows"] == 20000
