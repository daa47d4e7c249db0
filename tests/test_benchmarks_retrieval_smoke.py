"""The retrieval, index-build and PII benchmarks still run, on small sizes, Cauce's side only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import benchmark


@pytest.mark.slow
def test_retrieval_benchmark_quick_cauce_only(tmp_path: Path) -> None:
    """Exit 0; the table and the JSON hold Cauce's p50 and recall against exact search."""
    out = tmp_path / "retrieval.json"
    args = ["--quick", "--cauce-only", "--chunks", "2000", "--queries", "50", "--json", str(out)]
    proc = benchmark("retrieval_vs_chromadb.py", tmp_path, *args, timeout=300)
    assert "recall@10 vs exact" in proc.stdout
    result = json.loads(out.read_text())
    assert result["chromadb"] is None and result["ratio"] is None
    assert result["sizes"] == {"chunks": 2000, "queries": 50, "rounds": 1}
    cauce = result["cauce"]
    assert cauce["recall"] >= 0.95 and cauce["filtered_recall"] >= 0.95
    assert len(cauce["samples_s"]) == 50 and cauce["p50_ms"] > 0


@pytest.mark.slow
def test_index_build_benchmark_small_corpus(tmp_path: Path) -> None:
    """Exit 0; a full build and one refresh of 1 document out of 12 are profiled."""
    out = tmp_path / "build.json"
    args = ["--documents", "12", "--rounds", "1", "--json", str(out)]
    proc = benchmark("index_build.py", tmp_path, *args, timeout=300)
    assert "share in the embedding model" in proc.stdout
    result = json.loads(out.read_text())
    full = result["full"]
    assert full["documents"] == 12 and full["chunks"] >= 12
    assert 0 < full["model_s"] < full["total_s"]
    [refresh] = result["refreshes"]
    assert refresh["changes"] == {"new": 0, "changed": 1, "deleted": 0, "unchanged": 11}
    assert refresh["embedded"] >= 1 and refresh["reused_chunks"] > 0


@pytest.mark.slow
def test_index_refresh_through_the_workspace_small_corpus(tmp_path: Path) -> None:
    """Exit 0; a build and one refresh through cauce.indexes.refresh are timed."""
    out = tmp_path / "registry.json"
    args = ["--documents", "12", "--rounds", "1", "--json", str(out)]
    proc = benchmark("index_refresh_registry.py", tmp_path, *args, timeout=300)
    assert "in the model" in proc.stdout
    result = json.loads(out.read_text())
    assert result["documents"] == 12 and 0 < result["model_share"] <= 1
    [refresh] = result["refreshes"]
    assert refresh["changed"] == 1 and refresh["embedded"] >= 1


@pytest.mark.slow
def test_pii_benchmark_small_set(tmp_path: Path) -> None:
    """Exit 0; precision and recall per type on a small generated set."""
    out = tmp_path / "pii.json"
    proc = benchmark("pii_eval.py", tmp_path, "--texts", "200", "--json", str(out))
    assert "precision" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result["scores"]) == {"EMAIL", "PHONE", "CARD", "IBAN", "IP", "SSN", "DNI", "NIE"}
    assert all(s["recall"] > 0.8 for s in result["scores"].values())
