"""Flows: YAML DAGs and Python flows, variants, batch runs over datasets, traces, lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.clitools import cauce as run_cli
from tests.genai import nodes
from tests.genai.upstream import Upstream

import cauce
from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.genai import batches, flows, tracing
from cauce.lineage.graph import walk
from cauce.workspace import Workspace


def spec(url: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "Connection",
            "name": "echo",
            "base_url": url,
            "models": {"chat": "echo"},
            "max_retries": 0,
            "prices": {"echo": {"input": 1.0, "output": 1.0}},
        },
        {
            "kind": "Prompt",
            "name": "answer",
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "{{ question }}"},
            ],
            "model_parameters": {"temperature": 0, "max_tokens": 20},
        },
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
                    "variants": {"short": {"parameters": {"max_tokens": 2}}},
                },
                {
                    "name": "count",
                    "type": "python",
                    "function": "tests.genai.nodes:word_count",
                    "inputs": {"answer": "${generate.output}"},
                },
                {
                    "name": "guard",
                    "type": "safety",
                    "text": "${generate.output}",
                    "blocklist": ["password"],
                    "patterns": ["\\d{4}-\\d{4}"],
                },
            ],
            "outputs": {
                "answer": "${generate.output}",
                "words": "${count.output.words}",
                "flagged": "${guard.output.flagged}",
            },
        },
    ]


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """Local, then through a server: lines run here, flows and runs are records there."""
    return seam_workspace


def _apply(documents: Any) -> None:
    cauce.apply(documents)


@pytest.fixture
def qa(workspace: Workspace, upstream: Upstream) -> flows.Flow:
    _apply(spec(upstream.url))
    return flows.load("qa")


def test_a_line_runs_the_dag_in_order_as_one_trace(qa: flows.Flow) -> None:
    result = qa.run({"question": "what is a canary"})
    assert result.status == "ok", result.error
    assert result.outputs == {"answer": "echo: WHAT IS A CANARY", "words": 5, "flagged": False}
    assert (result.input_tokens, result.output_tokens) == (6, 5)
    assert result.cost == pytest.approx(11 / 1e6)
    trace = tracing.get_trace(str(result.trace_id))
    assert [s.name for s in trace.spans] == [
        "invoke_agent qa",
        "node loud",
        "node generate",
        "chat echo",
        "node count",
        "node guard",
    ]
    assert trace.spans[0].attributes["gen_ai.agent.name"] == "qa"
    assert trace.spans[2].attributes["cauce.prompt.version"] == "prompts:/answer/1"
    assert trace.prompts == ["prompts:/answer/1"]  # a lineage edge from the version
    assert trace.spans[3].parent_id == trace.spans[2].span_id
    assert trace.summary.input_tokens == 6


def test_variants_change_a_node_and_bad_ones_are_named(qa: flows.Flow) -> None:
    short = qa.run({"question": "what is a canary"}, variant="generate=short")
    assert short.outputs["answer"] == "echo: WHAT" and short.output_tokens == 2
    with pytest.raises(InvalidInput, match="node 'generate' has no variant 'long'"):
        qa.run({"question": "x"}, variant={"generate": "long"}, raise_errors=True)
    with pytest.raises(InvalidInput, match="has no node 'nope'"):
        qa.run({"question": "x"}, variant="nope=short", raise_errors=True)
    with pytest.raises(InvalidInput, match="needs input 'question'"):
        qa.run({}, raise_errors=True)


def test_a_failing_node_fails_only_its_line_and_safety_flags_or_blocks(
    qa: flows.Flow, workspace: Workspace
) -> None:
    failed = qa.run({"question": "boom"})
    assert failed.status == "error" and "boom is not a question" in str(failed.error)
    assert tracing.get_trace(str(failed.trace_id)).summary.status == "error"
    flagged = qa.run({"question": "my password is 1234-5678"})
    assert flagged.outputs["flagged"] is True
    body = spec("http://127.0.0.1:9/v1")[2]
    body["nodes"][3]["action"] = "block"
    _apply(body)
    blocked = flows.load("qa").run({"question": "my password"})
    assert blocked.status == "error" and "blocked the line: it matched password" in str(
        blocked.error
    )


def test_specs_are_checked_before_anything_is_applied(
    local_workspace: Workspace, upstream: Upstream
) -> None:
    def broken(change: Any) -> list[dict[str, Any]]:
        documents = spec(upstream.url)
        change(documents[2])
        return documents

    cases = [
        (lambda f: f["nodes"][1].update(inputs={"question": "${nope.output}"}), "names no node"),
        (lambda f: f["nodes"][1].update(inputs={"q": "${inputs.other}"}), "not an input"),
        (lambda f: f["nodes"][0].update(inputs={"text": "${count.output}"}), "in a cycle"),
        (lambda f: f["nodes"][1].pop("connection"), "needs connection"),
        (lambda f: f["nodes"][1].update(parameters={"temp": 1}), "unknown parameter 'temp'"),
        (lambda f: f["nodes"].append(dict(f["nodes"][0])), "declared twice"),
        (lambda f: f["nodes"][1].update(prompt="prompts:/missing"), "no prompt named 'missing'"),
        (lambda f: f["nodes"][3].update(patterns=["(unclosed"]), "not a regular expression"),
        (lambda f: f["nodes"][1].update(variants={"x": {"type": "python"}}), "name or type"),
    ]
    for change, words in cases:
        with pytest.raises(CauceError, match="document 3") as caught:
            cauce.apply(broken(change))
        assert words in str(caught.value), (words, str(caught.value))
    assert cauce.prompts.list_prompts() == [] and flows.list_flows() == []


def test_versions_lineage_and_reapplying(local_workspace: Workspace, upstream: Upstream) -> None:
    outcomes = [a.outcome for a in cauce.apply(spec(upstream.url))]
    assert outcomes == ["created"] * 3
    assert [a.outcome for a in cauce.apply(spec(upstream.url))] == ["unchanged"] * 3
    changed = spec(upstream.url)
    changed[2]["description"] = "answers"
    [_, _, updated] = cauce.apply(changed)
    assert updated.outcome == "updated" and updated.changes[0].new == 2
    assert flows.load("flows:/qa/1").version == 1 and flows.load("qa").version == 2
    prompt = cauce.prompts.load("answer")
    graph = walk(local_workspace, "prompt_version", prompt.id, direction="downstream")
    assert sorted((e.src.label, e.dst.label, e.relation) for e in graph.edges) == [
        ("flow qa v1", "flow qa v2", "revised"),
        ("prompt answer v1", "flow qa v1", "used_by"),
        ("prompt answer v1", "flow qa v2", "used_by"),
    ]
    with pytest.raises(NotFound):
        flows.load("flows:/qa/7")


def test_a_batch_run_stores_every_line_and_tracks_the_run(
    qa: flows.Flow, workspace: Workspace
) -> None:
    questions = ["what is a canary", "boom", "slow down", "flaky net", "why drift"]
    cauce.data.register("questions", pd.DataFrame({"q": questions, "id": range(5)}))
    nodes.ATTEMPTS.clear()
    result = batches.run(
        "qa", "questions@1", mapping={"question": "${data.q}"}, timeout="1s", retries=1
    )
    lines = cauce.data.load(result.lines.ref)
    assert list(lines["status"]) == ["ok", "error", "timeout", "ok", "ok"]
    assert list(lines["attempts"]) == [1, 2, 1, 2, 1]
    assert lines.loc[0, "outputs.answer"] == "echo: WHAT IS A CANARY"
    assert "boom is not a question" in lines.loc[1, "error"]
    assert "did not finish within 1 s" in lines.loc[2, "error"]
    assert lines.loc[3, "outputs.answer"] == "echo: FLAKY NET"
    assert list(lines["inputs.question"]) == questions
    assert result.metrics["lines"] == 5 and result.metrics["error_rate"] == pytest.approx(0.4)
    assert result.metrics["output_tokens"] == sum(lines["output_tokens"])
    run = cauce.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["flow"] == "qa" and run.data.params["data"] == "questions@1"
    assert run.data.metrics["timed_out"] == 1
    graph = walk(workspace, "run", result.run_id)
    relations = {(e.src.kind, e.dst.kind, e.relation) for e in graph.edges}
    assert ("dataset_version", "run", "input") in relations
    assert ("flow_version", "run", "ran") in relations
    assert ("run", "dataset_version", "produced") in relations


def test_compare_runs_each_variant_on_the_same_data(qa: flows.Flow) -> None:
    cauce.data.register("questions", pd.DataFrame({"question": ["what is a canary", "why"]}))
    default, short = batches.compare("qa", "questions", [None, "generate=short"])
    assert (default.variant, short.variant) == (None, "generate=short")
    assert default.data == short.data == "questions@1"
    assert default.metrics["output_tokens"] == 5 + 2
    assert short.metrics["output_tokens"] == 2 + 2
    assert short.lines.version == default.lines.version + 1
    # One comparison run, the variants' batch runs its children.
    assert default.parent_run_id is not None and default.parent_run_id == short.parent_run_id
    parent = cauce.get_run(default.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["variants"] == "default,generate=short"
    assert cauce.get_run(short.run_id).info.parent_run_id == parent.info.run_id


@cauce.flow(name="py-qa", variants={"polite": {"suffix": ", please"}})
def py_qa(question: str, suffix: str = "") -> dict[str, Any]:
    llm = cauce.connections.client("echo")
    return {"answer": llm.chat([{"role": "user", "content": question + suffix}]).text}


def test_a_python_flow_is_a_flow_too(workspace: Workspace, upstream: Upstream) -> None:
    _apply(spec(upstream.url)[0])
    assert py_qa("hi")["answer"] == "echo: hi"  # still a plain function
    line = py_qa.run({"question": "hi"}, variant="polite")
    assert line.outputs == {"answer": "echo: hi, please"}
    spans = tracing.get_trace(str(line.trace_id)).spans
    assert [s.name for s in spans] == ["invoke_agent py-qa", "chat echo"]
    assert py_qa.register().version == 1  # the same source: the same version
    cauce.data.register("qs", pd.DataFrame({"question": ["a", "b c"]}))
    result = batches.run(py_qa, "qs")
    assert result.metrics["succeeded"] == 2 and result.flow_version == 1
    assert flows.load("py-qa").run({"question": "x"}).outputs == {"answer": "echo: x"}
    assert [f.kind for f in flows.list_flows()] == ["python"]


def test_cli_tests_runs_and_compares(qa: flows.Flow, workspace: Workspace, tmp_path: Path) -> None:
    home = Path(workspace.settings.root)
    cauce.data.register("questions", pd.DataFrame({"question": ["what is a canary", "why"]}))
    tested = json.loads(
        run_cli(home, "flows", "test", "qa", "-i", "question=hello", "--json").stdout
    )
    assert tested["outputs"]["answer"] == "echo: HELLO" and tested["status"] == "ok"
    ran = json.loads(run_cli(home, "flows", "run", "qa", "-d", "questions", "--json").stdout)
    assert ran["metrics"]["succeeded"] == 2 and ran["lines"] == "flows.qa@1"
    compared = run_cli(
        home, "flows", "compare", "qa", "-d", "questions", "-v", "default", "-v", "generate=short"
    ).stdout
    assert "generate=short" in compared and "flows.qa@3" in compared
    failed = run_cli(home, "flows", "test", "qa", "-i", "question=boom", check=False)
    assert failed.returncode == 1 and "boom is not a question" in failed.stderr
    assert "qa" in run_cli(home, "flows", "list").stdout
