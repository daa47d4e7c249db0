"""The LLM benchmarks still run: the engines' ``--quick --llama-only`` and the threads' one
round, in subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from clitools import benchmark
from optional import missing


@pytest.mark.slow
def test_llm_engine_benchmark_quick_llama_only(tmp_path: Path) -> None:
    """Exit 0; llama.cpp's side answers 20 tokens greedily, the same each time."""
    if importlib.util.find_spec("llama_cpp") is None:  # not imported here: the script loads it
        missing("llama_cpp is not installed (pip install -e '.[genai]')")
    out = tmp_path / "results.json"
    proc = benchmark("llm_engines.py", tmp_path, "--quick", "--llama-only", "--json", str(out))
    assert "decode tok/s" in proc.stdout
    results = json.loads(out.read_text())
    assert set(results["samples"]) == {"llama"}
    (sample,) = results["samples"]["llama"]
    assert sample["completion_tokens"] == 20
    assert sample["repeat_same"] is True
    assert sample["decode_tok_s"] > 0 and sample["rss_mb"] > 0


@pytest.mark.slow
def test_llm_threads_benchmark_one_round(tmp_path: Path) -> None:
    """Exit 0 with a median per thread count, one for each CPU it may use, then the time 1 slot
    and N slots took for the same answers."""
    if importlib.util.find_spec("llama_cpp") is None:
        missing("llama_cpp is not installed (pip install -e '.[genai]')")
    proc = benchmark("llm_threads.py", tmp_path, "--rounds", "1")
    counts = [line for line in proc.stdout.splitlines() if line.startswith("threads=")]
    assert len(counts) == len(os.sched_getaffinity(0)) and "median" in counts[0]
    slots = [line for line in proc.stdout.splitlines() if line.startswith("slots=")]
    assert len(slots) == 2 and all("2 answers in" in line for line in slots)
