"""The GenAI demo story, offline: bundled documents → an index → two prompt variants of a RAG
flow answered by the local LLM on a question set → an evaluation table side by side (F1,
embedding similarity, groundedness by the local LLM as judge) → the better variant labelled
``production`` → lineage from a document to the answers that used it.

Every stage prints a line or a table and returns its numbers: ``cauce demo genai --json``.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

PROMPT = "answer"
FLOW = "rag-answer"
INDEX = "cauce-docs"
CONNECTION = "local"
MODEL = "smollm2"

_CONTEXT = "{% for chunk in context %}{{ chunk.text }}\n{% endfor %}"
VARIANTS = {
    "plain": (
        [{"role": "user", "content": _CONTEXT + "\nQuestion: {{ question }}\nAnswer:"}],
        "the context, then the question",
    ),
    "grounded": (
        [
            {
                "role": "system",
                "content": "Answer in one short sentence, using only the context. "
                "Copy the words of the context.",
            },
            {"role": "user", "content": "Context:\n" + _CONTEXT + "\nQuestion: {{ question }}"},
        ],
        "a system message that asks for one sentence from the context",
    ),
}


def data_folder() -> Path:
    """The bundled GenAI demo data: ``docs/`` and ``questions.csv`` (see its README)."""
    return Path(str(resources.files("cauce.demo") / "data" / "genai"))


def run(console: Console | None = None) -> dict[str, Any]:
    """Run the GenAI story in the current workspace; return every stage's results."""
    import pandas as pd

    import cauce
    from cauce.genai.llm_server import LLMServer
    from cauce.genai.llms import register_local_llm

    out = console or Console()
    started = time.perf_counter()
    results: dict[str, Any] = {}

    version = register_local_llm(MODEL)
    llm = cauce.models.load(version.uri).unwrap()
    server = LLMServer(llm, model_name=MODEL).start()
    out.print(
        f"[bold]Model[/bold] {version.uri}: SmolLM2-135M-Instruct (GGUF Q4_1, "
        f"{version.tags.get('license', 'Apache-2.0')}) served OpenAI-compatible at {server.url}"
    )
    results["model"] = {"uri": version.uri, "url": server.url}
    try:
        cauce.apply(
            [
                {
                    "kind": "Connection",
                    "name": CONNECTION,
                    "base_url": server.url,
                    "models": {"chat": MODEL},
                    "timeout": "120s",
                    "max_retries": 1,
                },
                {
                    "kind": "Index",
                    "name": INDEX,
                    "source": {"path": str(data_folder() / "docs")},
                    "chunker": {"method": "markdown", "size": 120, "overlap": 20},
                },
            ]
        )
        refreshed = cauce.indexes.refresh(INDEX)
        index = refreshed.version
        out.print(
            f"[bold]Index[/bold] {index.ref}: {index.document_count} documents → "
            f"{index.chunk_count} chunks embedded by all-MiniLM-L6-v2 (offline)"
        )
        results["index"] = index.to_dict()

        for name, (messages, why) in VARIANTS.items():
            cauce.prompts.register(
                PROMPT,
                messages,
                variables={"context": "array", "question": "string"},
                model_parameters={"temperature": 0, "max_tokens": 40},
                commit_message=f"{name}: {why}",
            )
        cauce.apply(_flow())
        questions = pd.read_csv(data_folder() / "questions.csv")
        data = cauce.data.register("genai-questions", questions)
        out.print(
            f"[bold]Prompts[/bold] {PROMPT} v1 (plain) and v2 (grounded); flow {FLOW} "
            f"(retrieve → answer); {data.row_count} questions as {data.ref}"
        )

        evaluations = cauce.evals.compare(
            data.ref,
            ["f1", "similarity", "groundedness"],
            flow=FLOW,
            variants=[None, "answer=grounded"],
            judge=CONNECTION,
            # The 135M judge answers in the judgment's JSON form only when its decoding is
            # constrained to it (llama.cpp's grammar from the schema), and its reason only
            # ends in time when the schema bounds it.
            judge_params={"max_tokens": 80, "response_format": _judgment_format(60)},
            concurrency=1,
        )
        results["evaluations"] = [e.to_dict() for e in evaluations]
        _table(out, evaluations)

        best = max(evaluations, key=lambda e: _number(e.metrics.get("f1")))
        best_version = 2 if best.variant == "answer=grounded" else 1
        cauce.prompts.set_label(
            PROMPT,
            "production",
            best_version,
            reason=f"best F1 on {data.ref}: {_number(best.metrics.get('f1')):.3f}",
        )
        out.print(
            f"[bold]Label[/bold] prompts:/{PROMPT}@production → v{best_version} "
            f"({best.variant or 'plain'}, F1 {_number(best.metrics.get('f1')):.3f})"
        )
        results["production"] = {"prompt": f"prompts:/{PROMPT}/{best_version}"}
        results["lineage"] = _lineage(out)
    finally:
        server.stop()
        llm.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.print(f"GenAI story done in {results['seconds']:.0f} s.")
    return results


def _judgment_format(reason_chars: int) -> dict[str, Any]:
    """The judge's structured-output request with the reason bounded to ``reason_chars``."""
    import copy

    import cauce

    found: dict[str, Any] = copy.deepcopy(cauce.evals.judge.RESPONSE_FORMAT)
    found["json_schema"]["schema"]["properties"]["reason"]["maxLength"] = reason_chars
    return found


def _flow() -> dict[str, Any]:
    return {
        "kind": "Flow",
        "name": FLOW,
        "description": "Answer a question from the Cauce docs.",
        "inputs": {"question": {"type": "string"}},
        "nodes": [
            {
                "name": "find",
                "type": "retrieve",
                "index": INDEX,
                "query": "${inputs.question}",
                "top_k": 2,
            },
            {
                "name": "answer",
                "type": "llm",
                "prompt": f"prompts:/{PROMPT}/1",
                "connection": CONNECTION,
                "inputs": {"question": "${inputs.question}", "context": "${find.output}"},
                "variants": {"grounded": {"prompt": f"prompts:/{PROMPT}/2"}},
            },
        ],
        "outputs": {"answer": "${answer.output}", "contexts": "${find.output}"},
    }


def _table(out: Console, evaluations: list[Any]) -> None:
    table = Table(title="Evaluation on the same questions", title_justify="left")
    table.add_column("Metric")
    for evaluation in evaluations:
        table.add_column(evaluation.variant or "plain", justify="right")
    keys = [
        ("f1", "token F1"),
        ("similarity", "similarity (MiniLM)"),
        ("groundedness", "groundedness (judge, 1-5)"),
        ("groundedness.pass_rate", "groundedness pass rate"),
        ("groundedness.error_rate", "judge answers unreadable"),
        ("flow.latency_p50_ms", "latency p50 (ms)"),
        ("flow.output_tokens", "output tokens"),
    ]
    for key, label in keys:
        table.add_row(label, *[_shown(e.metrics.get(key)) for e in evaluations])
    out.print(table)


def _lineage(out: Console) -> dict[str, Any]:
    """From a document to the answers that used it: document → index version → retrievals."""
    import cauce

    document = "canary-rollouts.md"
    used = cauce.indexes.retrievals_of(document, index=INDEX)
    traces = sorted({u["trace_id"] for u in used})
    out.print(
        f"[bold]Lineage[/bold] document {document} → index {INDEX}@1 → {len(used)} retrievals in "
        f"{len(traces)} traces (cauce.indexes.retrievals_of, cauce traces show TRACE_ID)"
    )
    return {"document": document, "retrievals": len(used), "traces": traces}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value == value else float("-inf")


def _shown(value: Any) -> str:
    if not isinstance(value, (int, float)) or value != value:
        return "—"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
