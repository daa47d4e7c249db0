"""Evaluation runs: evaluators over datasets and flows, judges through a connection with a
reproducible cache, scores on traces, and prompt versions gated on their evaluations."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.clitools import cauce as run_cli
from tests.genai.upstream import Upstream

import cauce
from cauce.errors import InvalidInput
from cauce.genai import evals, prompts, tracing
from cauce.genai.evals import gates
from cauce.genai.evals.metrics import token_f1
from cauce.lineage import audit
from cauce.lineage.graph import walk
from cauce.workspace import Workspace
from remote import server_side

QUESTIONS = ["what is a canary", "why drift", "boom"]
REFERENCES = ["echo: WHAT IS A CANARY", "echo: drift happens", "nothing"]


def documents(url: str, user: str = "{{ question }}") -> list[dict[str, Any]]:
    return [
        {
            "kind": "Connection",
            "name": "echo",
            "base_url": url,
            "models": {"chat": "echo"},
            "max_retries": 0,
        },
        {"kind": "Prompt", "name": "answer", "messages": [{"role": "user", "content": user}]},
        {
            "kind": "Flow",
            "name": "qa",
            "inputs": {"question": {"type": "string"}},
            "nodes": [
                {
                    "name": "loud",
                    "type": "python",
                    "function": "tests.genai.nodes:shout",
                    "inputs": {"text": "${inputs.question}"},
                },
                {
                    "name": "generate",
                    "type": "llm",
                    "prompt": "prompts:/answer",
                    "connection": "echo",
                    "inputs": {"question": "${loud.output}"},
                },
            ],
            "outputs": {"answer": "${generate.output}"},
        },
    ]


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """Local, then through a server: flows, LLM calls and scoring run here, records there."""
    return seam_workspace


@pytest.fixture
def golden(workspace: Workspace, upstream: Upstream) -> Workspace:
    cauce.apply(documents(upstream.url))
    cauce.data.register("golden", pd.DataFrame({"question": QUESTIONS, "reference": REFERENCES}))
    return workspace


def test_offline_evaluators_score_every_row_and_track_the_means(workspace: Workspace) -> None:
    answers = ["Paris is the capital", "no idea", "Rome"]
    references = ["the capital is Paris", "Madrid", "Rome"]
    cauce.data.register("qa", pd.DataFrame({"output": answers, "expected": references}))
    result = evals.run("qa", ["exact_match", "f1", "rouge_l", "bleu"], mapping={"answer": "output"})
    scores = cauce.data.load(result.scores.ref)
    assert list(scores["score.exact_match"]) == [0.0, 0.0, 1.0]
    expected_f1 = token_f1(answers, references)
    assert list(scores["score.f1"]) == pytest.approx(list(expected_f1))
    assert result.metrics["f1"] == pytest.approx(float(expected_f1.mean()))
    assert list(scores["answer"]) == answers and list(scores["reference"]) == references
    run = cauce.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["evaluators"] == "exact_match,f1,rouge_l,bleu"
    assert run.data.metrics["rows"] == 3 and run.data.metrics["exact_match"] == pytest.approx(1 / 3)
    relations = {
        (e.src.kind, e.dst.kind, e.relation) for e in walk(workspace, "run", result.run_id).edges
    }
    assert ("dataset_version", "run", "input") in relations
    assert ("run", "dataset_version", "produced") in relations
    cauce.data.register("other", pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(InvalidInput, match="f1 read 'answer', and no column holds it"):
        evals.run("other", ["f1"])
    with pytest.raises(InvalidInput, match="unknown evaluator 'bogus'"):
        evals.run("qa", ["bogus"])
    with pytest.raises(InvalidInput, match="relevance need a judge"):
        evals.run("qa", ["relevance"], mapping={"answer": "output", "question": "output"})


def test_an_evaluation_run_lasts_as_long_as_its_scoring_and_a_failed_one_is_kept(
    workspace: Workspace,
) -> None:
    import time

    import numpy as np

    def slow(columns: dict[str, list[Any]]) -> np.ndarray:
        time.sleep(0.3)
        return np.ones(len(columns["answer"]))

    def broken(columns: dict[str, list[Any]]) -> np.ndarray:
        raise ValueError("the scorer broke")

    cauce.data.register("qa", pd.DataFrame({"answer": ["a", "b"]}))
    result = evals.run("qa", [evals.Evaluator("slow", ("answer",), score=slow)])
    info = cauce.get_run(result.run_id).info
    assert info.status == "FINISHED" and info.end_time - info.start_time >= 300
    with pytest.raises(ValueError, match="the scorer broke"):
        evals.run("qa", [evals.Evaluator("broken", ("answer",), score=broken)])
    [failed] = cauce.search_runs("evals", filter="status = 'FAILED'")
    assert failed.info.run_name == "eval qa" and "the scorer broke" in (failed.info.error or "")


def test_retrieval_evaluators_read_json_lists(workspace: Workspace) -> None:
    cauce.data.register(
        "ranked",
        pd.DataFrame(
            {
                "retrieved": [json.dumps(["a", "b", "c"]), json.dumps([{"id": "x"}, {"id": "a"}])],
                "relevant": [json.dumps(["b"]), json.dumps({"a": 2, "z": 1})],
            }
        ),
    )
    result = evals.run("ranked", ["precision@2", "recall@2", "mrr", "ndcg@3"])
    assert result.evaluators == ["precision_at_2", "recall_at_2", "mrr", "ndcg_at_3"]
    scores = cauce.data.load(result.scores.ref)
    assert list(scores["score.precision_at_2"]) == [0.5, 0.5]
    assert list(scores["score.recall_at_2"]) == [1.0, 0.5]
    assert list(scores["score.mrr"]) == [0.5, 0.5]


def test_a_flow_answers_first_and_failed_lines_are_not_scored(golden: Workspace) -> None:
    result = evals.run("golden", ["exact_match", "f1"], flow="qa")
    scores = cauce.data.load(result.scores.ref)
    assert list(scores["score.exact_match"][:2]) == [1.0, 0.0]
    assert math.isnan(scores["score.exact_match"][2])  # the line failed: not scored
    assert result.metrics["rows_scored"] == 2
    assert result.metrics["flow.error_rate"] == pytest.approx(1 / 3)
    assert result.metrics["exact_match"] == 0.5
    run = cauce.get_run(result.run_id)
    version = prompts.load("answer")
    assert run.data.tags["cauce.prompt_version.generate"] == version.id
    assert run.data.params["flow"] == "qa" and run.data.params["variant"] == "default"
    trace = tracing.get_trace(str(scores["trace_id"][0]))
    events = trace.spans[0].events
    assert {e["attributes"]["gen_ai.evaluation.name"] for e in events} == {"exact_match", "f1"}


def test_compared_evaluations_and_their_batch_runs_are_children_of_one_run(
    golden: Workspace,
) -> None:
    first, second = evals.compare("golden", ["exact_match"], flow="qa", variants=[None, None])
    parent = cauce.get_run(first.run_id).info.parent_run_id
    assert parent is not None and cauce.get_run(second.run_id).info.parent_run_id == parent
    children = cauce.search_runs(filter=f"parent_run_id = '{parent}'")
    assert len(children) == 4  # each variant's evaluation run and batch run
    batch = cauce.get_run(cauce.get_run(first.run_id).data.params["batch_run"])
    assert batch.info.parent_run_id == parent
    # The batch's totals beside the scores.
    assert first.metrics["flow.lines"] == 3 and first.metrics["flow.failed"] == 1
    assert first.metrics["flow.output_tokens"] == batch.data.metrics["output_tokens"]
    assert "flow.latency_p95_ms" in first.metrics and "flow.cost" not in first.metrics


def test_judges_go_through_a_connection_and_reproduce_from_the_cache(
    golden: Workspace, upstream: Upstream
) -> None:
    upstream.reply = lambda body: (
        "Score: 2\nReason: vague" if "why" in json.dumps(body) else '{"score": 5, "reason": "ok"}'
    )
    data = cauce.data.register(
        "judged",
        pd.DataFrame({"question": ["what is a canary", "why drift"], "answer": ["A canary.", "?"]}),
    )
    first = evals.run(data.ref, ["relevance", "coherence"], judge="echo")
    calls = len(upstream.requests)
    assert calls == 4
    again = evals.run(data.ref, ["relevance", "coherence"], judge="echo")
    assert len(upstream.requests) == calls  # every answer read back from the store
    assert again.metrics == first.metrics
    scores = cauce.data.load(first.scores.ref)
    assert list(scores["score.relevance"]) == [5.0, 2.0]
    assert list(scores["label.relevance"]) == ["pass", "fail"]
    assert list(scores["reason.relevance"]) == ["ok", "vague"]
    assert first.metrics["relevance.pass_rate"] == 0.5
    assert cauce.get_run(first.run_id).data.params["judge"] == "echo/echo"
    upstream.reply = lambda body: "I would rather not say."
    bad = evals.run(data.ref, ["groundedness"], judge="echo", mapping={"contexts": "answer"})
    failed = cauce.data.load(bad.scores.ref)
    assert failed["score.groundedness"].isna().all()
    assert failed["error.groundedness"].notna().all()
    assert bad.metrics["groundedness.error_rate"] == 1.0


def test_a_prompt_version_is_gated_on_its_evaluations(
    golden: Workspace, upstream: Upstream
) -> None:
    evals.run("golden", ["f1"], flow="qa")
    prompts.set_label("answer", "production", 1)
    cauce.apply(documents(upstream.url, user="Q: {{ question }}")[1], workspace=server_side(golden))
    candidate = evals.run("golden", ["f1"], flow="qa")
    assert cauce.get_run(candidate.run_id).data.tags["cauce.prompt_version.generate"] == (
        prompts.load("prompts:/answer/2").id
    )
    policy = {
        "kind": "Gate",
        "name": "answer-release",
        "data": "golden",
        "rules": [
            {"metric": {"name": "f1", "min": 0.5}},
            {"regression": {"metric": "f1", "max_drop": 0.05, "against": "production"}},
        ],
    }
    result = gates.check("prompts:/answer/2", policy)
    assert not result.passed
    [metric, regression] = result.rules
    assert metric.value == pytest.approx(candidate.metrics["f1"])
    assert not regression.passed and "dropped" in regression.message
    assert gates.check("prompts:/answer/1", {**policy, "rules": policy["rules"][:1]}).passed
    events = audit.events(golden, action="gate.check")
    assert events[0].entity_kind == "prompt_version"
    with pytest.raises(InvalidInput, match="a card rule does not apply to a prompt version"):
        gates.check("prompts:/answer/2", {**policy, "rules": [{"card": {"required": ["x"]}}]})
    unmeasured = gates.check("prompts:/answer/2", {**policy, "data": "golden@9"})
    assert not unmeasured.passed


def test_cli_runs_compares_and_gates(golden: Workspace, tmp_path: Path) -> None:
    home = Path(golden.settings.root)
    ran = json.loads(
        run_cli(home, "evals", "run", "-d", "golden", "-f", "qa", "-e", "f1", "--json").stdout
    )
    assert ran[0]["metrics"]["rows_scored"] == 2
    other = json.loads(
        run_cli(
            home, "evals", "run", "-d", "golden", "-e", "f1", "-m", "answer=reference", "--json"
        ).stdout
    )
    assert other[0]["metrics"]["f1"] == 1.0
    compared = run_cli(home, "evals", "compare", ran[0]["run_id"], other[0]["run_id"]).stdout
    assert "f1" in compared and "golden@1" in compared
    policy = tmp_path / "gate.yaml"
    policy.write_text(
        "kind: Gate\nname: g\ndata: golden\nrules:\n  - metric: {name: f1, min: 0.9}\n"
    )
    failed = run_cli(
        home, "gate", "check", "prompts:/answer/1", "--policy", str(policy), check=False
    )
    assert failed.returncode == 1 and "metric f1" in failed.stderr
