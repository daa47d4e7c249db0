"""A catalog comparison through the project's own local LLM server (SmolLM2 served
OpenAI-compatible on loopback): tokens equal what the model counts, costs follow from them."""

from __future__ import annotations

import pandas as pd
import pytest

from optional import need

need("llama_cpp", extra="genai")

import cauce  # noqa: E402
from cauce.genai import prompts  # noqa: E402
from cauce.genai.llm_server import LLMServer  # noqa: E402
from cauce.genai.llms import LocalLLM, packaged_model_path  # noqa: E402
from cauce.workspace import Workspace  # noqa: E402

QUESTIONS = ["What is a river?", "Name a colour."]


def test_the_local_llm_compared_on_two_prompts_with_exact_tokens_and_cost(
    workspace: Workspace,
) -> None:
    with (
        LocalLLM(packaged_model_path(), name="smollm2", context_length=1024) as llm,
        LLMServer(llm) as server,
    ):
        cauce.apply(
            [
                {"kind": "Connection", "name": "local", "base_url": server.url, "max_retries": 0},
                {
                    "kind": "CatalogModel",
                    "name": "smollm2",
                    "provider": "local",
                    "connection": "local",
                    "context_length": 1024,
                    "price": {"input": 0.5, "output": 1.0},
                    "licence": "Apache-2.0",
                },
                {
                    "kind": "Prompt",
                    "name": "answer",
                    "messages": [
                        {"role": "system", "content": "You are a concise assistant."},
                        {"role": "user", "content": "{{ question }}"},
                    ],
                    "labels": ["production"],
                },
                {
                    "kind": "Prompt",
                    "name": "bare",
                    "messages": [{"role": "user", "content": "{{ question }}"}],
                },
            ]
        )
        cauce.data.register(
            "qa", pd.DataFrame({"question": QUESTIONS, "reference": ["water", "red"]})
        )
        result = cauce.catalog.compare(
            "qa",
            ["smollm2"],
            ["answer@production", "bare"],
            ["f1"],
            parameters={"max_tokens": 4, "temperature": 0},
            concurrency=1,
        )
        assert [c.prompt for c in result.cells] == ["answer@production", "bare@latest"]
        for cell in result.cells:
            version = prompts.load(cell.prompt_version)
            expected = sum(llm.count_tokens(version.render(question=q)) for q in QUESTIONS)
            assert cell.input_tokens == expected
            assert (cell.errors, cell.requests) == (0, 2)
            assert 2 <= cell.output_tokens <= 8  # max_tokens=4 per line
            assert cell.cost == pytest.approx(
                (cell.input_tokens * 0.5 + cell.output_tokens * 1.0) / 1e6
            )
            assert 0.0 <= cell.quality["f1"] <= 1.0
