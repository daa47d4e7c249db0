"""``cauce demo genai`` end to end, offline: the local LLM, the index, two prompt variants,
the evaluation side by side, the production label and the lineage of a document; then the flow
served with safety filters, the documents changed, the drift alert, the refreshed index gated
and rolled out as a canary, promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.clitools import cauce

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1500)
def test_the_genai_story_then_its_read_commands(tmp_path: Path) -> None:
    home = tmp_path / "genai"
    demo = cauce(home, "demo", "genai", "--json", timeout=1200)
    story = json.loads(demo.stdout)
    assert "Evaluation on the same questions" in demo.stderr
    assert story["model"]["uri"] == "models:/smollm2/1"
    assert story["index"]["document_count"] == 8 and story["index"]["chunk_count"] >= 8
    plain, grounded = story["evaluations"]
    assert (plain["variant"], grounded["variant"]) == (None, "answer=grounded")
    assert plain["data"] == grounded["data"] == "genai-questions@1"
    for evaluation in (plain, grounded):
        metrics = evaluation["metrics"]
        assert metrics["rows"] == 10 and metrics["flow.error_rate"] == 0
        assert 0 <= metrics["f1"] <= 1 and -1 <= metrics["similarity"] <= 1
        assert "groundedness.error_rate" in metrics
    best = max((plain, grounded), key=lambda e: e["metrics"]["f1"])
    expected = "prompts:/answer/2" if best is grounded else "prompts:/answer/1"
    assert story["production"]["prompt"] == expected
    assert story["lineage"]["retrievals"] >= 2 and story["lineage"]["traces"]

    loop = story["loop"]
    assert loop["serving"]["answered"] == 10
    assert loop["safety"]["injection"] == "content_filter"
    stored = loop["safety"]["stored_query"]
    assert "[EMAIL_1]" in stored and "ana.lopez@example.com" not in stored
    assert loop["alert"]["context_similarity"] < 0.42
    assert any("context_similarity" in str(b) for b in loop["alert"]["breaches"])
    refresh = loop["refresh"]
    assert (refresh["staged"], refresh["current"]) == (2, 1)
    # The demo's own account of the rollout (its decisions and their measured values) when not.
    assert loop["rollout"] == {"state": "promoted", "current_version": 2}, demo.stderr[-4000:]
    moves = cauce(home, "audit", "--action", "index.current.set").stdout
    assert "cauce-controller" in moves

    shown = json.loads(
        cauce(home, "prompts", "show", "prompts:/answer@production", "--json").stdout
    )
    assert f"prompts:/answer/{shown['version']}" == expected
    trace = json.loads(
        cauce(home, "traces", "show", story["lineage"]["traces"][0], "--json").stdout
    )
    names = [s["name"] for s in trace["spans"]]
    assert names[:3] == ["invoke_agent rag-answer", "node find", "retrieval cauce-docs"]
    assert "chat smollm2" in names
    # Each of the demo's users asked in a conversation of their own.
    sessions = json.loads(cauce(home, "traces", "sessions", "--json").stdout)
    assert {(s["id"], tuple(s["user_ids"])) for s in sessions} == {
        (f"conversation-{n}", (f"user-{n}",)) for n in range(3)
    }
    compared = cauce(home, "evals", "compare", plain["run_id"], grounded["run_id"]).stdout
    assert "f1" in compared and "genai-questions@1" in compared
    lineage = cauce(home, "lineage", "prompts:/answer/1", "-d", "downstream").stdout
    assert "flow rag-answer v1" in lineage
    # The flow version is linked from the model its LLM node calls and the index it searches.
    upstream = cauce(home, "lineage", "models:/smollm2/1", "-d", "downstream").stdout
    assert "flow rag-answer v1" in upstream
