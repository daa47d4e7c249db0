"""Rollouts of GenAI candidates: a new prompt version or a new index version goes out as a
canary judged on GenAI signals (cost per request, time to first token, safety flags,
evaluator scores) and is promoted (the prompt label or the index's current version moves,
audited) or rolled back on its own.

As in test_rollouts.py the controller runs at explicit times over measurements written the way
a router writes them, and records written by the real collector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.genai.upstream import Upstream

import cauce
from cauce.genai import openai_api as api
from cauce.genai import prompts
from cauce.genai.indexes import registry as indexes
from cauce.lineage.audit import events
from cauce.serving import rollouts
from cauce.serving.collector import Collector, GenAIRecord
from cauce.serving.endpoints import get_endpoint
from cauce.serving.metrics import Window, store_windows
from cauce.workspace import Workspace


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """Local, then through a server: the controller reads the collector's files here either way."""
    return seam_workspace


@pytest.fixture
def upstream() -> Any:
    server = Upstream()
    yield server
    server.close()


def prompt(version_text: str) -> dict[str, Any]:
    return {
        "kind": "Prompt",
        "name": "support",
        "messages": [{"role": "system", "content": version_text}],
    }


@pytest.fixture
def assistant(workspace: Workspace, upstream: Upstream) -> Workspace:
    """blue serves support v1 (labelled production), green support v2; blue takes all."""
    cauce.apply(
        [
            {"kind": "Connection", "name": "echo", "base_url": upstream.url,
             "models": {"chat": "echo"}},
            prompt("Be brief."),
        ]
    )  # fmt: skip
    cauce.apply([prompt("Be brief and kind.")])
    prompts.set_label("support", "production", 1, workspace=workspace)
    cauce.apply(
        [
            {"kind": "Endpoint", "name": "assistant", "traffic": {"blue": 100}},
            {"kind": "Deployment", "endpoint": "assistant", "name": "blue",
             "prompt": "prompts:/support@production", "connection": "echo"},
            {"kind": "Deployment", "endpoint": "assistant", "name": "green",
             "prompt": "prompts:/support/2", "connection": "echo"},
        ]
    )  # fmt: skip
    return workspace


def collect(
    ws: Workspace,
    deployment: str,
    at: int,
    n: int,
    *,
    cost: float = 1e-5,
    flagged: int = 0,
    answer: str = "the parcel left on Monday",
    contexts: list[str] | None = None,
) -> None:
    """``n`` answered requests of ``deployment`` at ``at``, through the real collector."""
    collector = Collector(ws, "assistant")
    collector.configure(get_endpoint("assistant", workspace=ws).deployments)
    decision = {"direction": "input", "filter": "injection", "action": "flag", "triggered": True}
    for i in range(n):
        body = {"model": "assistant", "messages": [{"role": "user", "content": "where is it"}]}
        reply = api.completion(
            id=f"c{i}", model="echo", text=answer, finish_reason="stop",
            prompt_tokens=4, completion_tokens=6,
        )  # fmt: skip
        summary = api.Summary(
            prompt_tokens=4,
            completion_tokens=6,
            cost=cost,
            finish_reason="stop",
            model="echo",
            safety=[decision] if i < flagged else [],
            contexts=contexts,
        )
        collector.record(
            GenAIRecord(
                deployment=deployment, source="live", target="",
                correlation_id=f"{deployment}-{at}-{i}",
                timestamp_ms=at, latency_ms=20.0, ttft_ms=None, operation="chat", key=None,
                status=200, stream=False, abandoned=False, cached=False,
                request=json.dumps(body).encode(), response=json.dumps(reply).encode(),
                summary=summary,
            )
        )  # fmt: skip
    collector.close()


def measure(ws: Workspace, deployment: str, at: int, requests: int) -> None:
    window = Window()
    for _ in range(requests):
        window.observe(20.0, False)
    endpoint_id = get_endpoint("assistant", workspace=ws).id
    store_windows(ws, "assistant", endpoint_id, at - 1000, at, {(deployment, "live"): window})


def spec(metrics: list[dict[str, Any]], **analysis: Any) -> dict[str, Any]:
    return {
        "kind": "Rollout",
        "endpoint": "assistant",
        "candidate": "green",
        "alias": "production",
        "steps": [{"weight": 100}],
        "analysis": {"interval": "10s", "failure_limit": 1, "min_requests": 5,
                     "metrics": metrics, **analysis},
    }  # fmt: skip


def judge(ws: Workspace, **collected: Any) -> rollouts.Rollout:
    state = rollouts.status("assistant", workspace=ws)
    assert state.next_analysis_at is not None
    now = state.next_analysis_at + 1
    collect(ws, "green", now - 500, 10, **collected)
    measure(ws, "green", now - 1, 10)
    rollouts.tick(now=now, workspace=ws)
    return rollouts.status("assistant", workspace=ws)


def test_a_prompt_canary_judged_on_cost_and_safety_is_promoted_with_its_label(
    assistant: Workspace,
) -> None:
    rollouts.start(
        spec([{"name": "cost_per_request", "max": 2e-5}, {"name": "safety_flag_rate", "max": 0.2}]),
        workspace=assistant,
    )
    rollout = judge(assistant, cost=1e-5, flagged=1)
    assert rollout.state == "promoted"
    measured = rollout.decisions[-1].measured
    assert measured["cost_per_request"]["value"] == pytest.approx(1e-5)
    assert measured["safety_flag_rate"]["value"] == pytest.approx(0.1)
    assert prompts.load("prompts:/support@production", workspace=assistant).version == 2
    (moved, *_) = [e for e in events(assistant) if e.action.startswith("prompt.label")]
    assert moved.actor == "cauce-controller" and moved.after["version"] == 2
    history = prompts.label_history("support", workspace=assistant)
    assert any("rollout of green on assistant promoted" in (h["reason"] or "") for h in history)


def test_a_costlier_prompt_canary_rolls_back_and_the_label_stays(assistant: Workspace) -> None:
    rollouts.start(spec([{"name": "cost_per_request", "max": 2e-5}]), workspace=assistant)
    rollout = judge(assistant, cost=5e-5)
    assert rollout.state == "rolled_back"
    assert "cost_per_request 5e-05 > max 2e-05" in (rollout.reason or "")
    assert prompts.load("prompts:/support@production", workspace=assistant).version == 1
    assert get_endpoint("assistant", workspace=assistant).traffic == {"blue": 100, "green": 0}


def test_an_evaluator_score_judges_the_canary_once_enough_answers_are_sampled(
    assistant: Workspace,
) -> None:
    metrics = [{"name": "on_topic", "evaluator": "relevance", "min": 0.5}]
    rollouts.start(spec(metrics, min_samples=30), workspace=assistant)
    rollout = judge(assistant)  # ten answers: fewer than min_samples
    last = rollout.decisions[-1]
    assert last.decision == "inconclusive" and "fewer than min_samples 30" in str(last.measured)


def test_a_new_index_version_goes_out_as_a_canary_and_its_promotion_moves_the_index(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "shipping.txt").write_text("Parcels ship on Monday.")
    cauce.apply(
        [
            {"kind": "Connection", "name": "echo", "base_url": upstream.url,
             "models": {"chat": "echo", "embeddings": "echo-embed"}},
            {"kind": "Index", "name": "docs", "source": {"path": str(docs)},
             "embeddings": {"connection": "echo"}},
        ]
    )  # fmt: skip
    indexes.refresh("docs", workspace=workspace)
    (docs / "shipping.txt").write_text("Parcels ship on Tuesday now.")
    staged = indexes.refresh("docs", promote=False, workspace=workspace)
    assert staged.version.version == 2 and indexes.get_index("docs").current_version == 1

    @cauce.flow(name="lookup")
    def lookup(question: str) -> dict[str, Any]:
        hits = cauce.indexes.query("docs", question, k=1)
        return {"answer": hits[0].text, "contexts": [h.text for h in hits]}

    lookup.register()
    cauce.apply(
        [
            {"kind": "Endpoint", "name": "assistant", "traffic": {"blue": 100}},
            {"kind": "Deployment", "endpoint": "assistant", "name": "blue",
             "flow": "flows:/lookup", "indexes": {"docs": 1}},
            {"kind": "Deployment", "endpoint": "assistant", "name": "green",
             "flow": "flows:/lookup", "indexes": {"docs": 2}},
        ]
    )  # fmt: skip
    # Each deployment reads its own version of the index.
    assert lookup.run({"question": "when"}, indexes={"docs": 2}).outputs["answer"] == (
        "Parcels ship on Tuesday now."
    )
    assert lookup.run({"question": "when"}).outputs["answer"] == "Parcels ship on Monday."
    rollouts.start(spec([{"name": "block_rate", "max": 0.0}]), workspace=workspace)
    rollout = judge(workspace)
    assert rollout.state == "promoted"
    assert indexes.get_index("docs").current_version == 2
    (moved, *_) = events(workspace, action="index.current.set")
    assert (moved.before["version"], moved.after["version"]) == (1, 2)
    assert moved.actor == "cauce-controller"


def test_an_index_pin_names_a_version_that_exists(workspace: Workspace, upstream: Upstream) -> None:
    from cauce.errors import InvalidInput, NotFound

    with pytest.raises((InvalidInput, NotFound)):
        cauce.apply(
            [
                {"kind": "Endpoint", "name": "assistant"},
                {"kind": "Deployment", "endpoint": "assistant", "name": "blue",
                 "flow": "flows:/lookup", "indexes": {"docs": 9}},
            ]
        )  # fmt: skip
