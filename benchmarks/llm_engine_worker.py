"""One engine, in a fresh process: load a GGUF chat model, answer one prompt greedily, report.

Run by ``llm_engines.py`` (see there); it prints one JSON object on stdout:
``load_s`` (import + load), ``rss_mb`` after load and after generating, ``ttft_s`` (request to
first text), ``completion_tokens``, ``decode_tok_s`` (tokens after the first over the time after
the first), ``total_s``, ``prompt_tokens``, ``text`` and ``repeat_same`` (a second greedy run,
seed fixed, gave the same text).

- ``llama``: Cauce's ``LocalLLM`` (llama-cpp-python) in the project's venv.
- ``transformers``: ``AutoModelForCausalLM.from_pretrained(folder, gguf_file=...)`` (transformers
  dequantizes the GGUF weights into torch tensors) with ``generate(do_sample=False)`` and a
  ``TextIteratorStreamer`` for the first token, in its own venv.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Write a detailed essay about how rivers shape the land, with examples.",
    },
]


def rss_mb() -> float:
    """This process's resident memory, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_llama(model: str, max_tokens: int, threads: int) -> dict[str, Any]:
    """Cauce's LocalLLM: load, then stream one greedy answer, then answer it again."""
    start = time.perf_counter()
    from cauce.genai.llms import LocalLLM

    llm = LocalLLM(model, context_length=2048, threads=threads)
    loaded = time.perf_counter()
    out: dict[str, Any] = {"load_s": loaded - start, "rss_load_mb": rss_mb()}
    begin = time.perf_counter()
    first = None
    parts = []
    usage = None
    for chunk in llm.stream(MESSAGES, max_tokens=max_tokens, temperature=0.0, seed=0):
        if chunk.text and first is None:
            first = time.perf_counter()
        parts.append(chunk.text)
        usage = chunk.usage
    end = time.perf_counter()
    assert usage is not None and first is not None
    again = llm.chat(MESSAGES, max_tokens=max_tokens, temperature=0.0, seed=0)
    text = "".join(parts)
    out.update(
        ttft_s=first - begin,
        total_s=end - begin,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        decode_tok_s=(usage.completion_tokens - 1) / (end - first),
        rss_mb=rss_mb(),
        text=text,
        repeat_same=again.text == text,
    )
    return out


def run_transformers(model: str, max_tokens: int, threads: int) -> dict[str, Any]:
    """transformers reading the GGUF file: load, then stream one greedy answer, then again."""
    start = time.perf_counter()
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    torch.set_num_threads(threads)
    path = Path(model)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    lm = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    lm.eval()
    loaded = time.perf_counter()
    out: dict[str, Any] = {
        "load_s": loaded - start,
        "rss_load_mb": rss_mb(),
        "dtype": str(lm.dtype),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    inputs = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )

    def generate(streamer: Any = None) -> Any:
        torch.manual_seed(0)
        with torch.inference_mode():
            return lm.generate(
                **inputs,
                max_new_tokens=max_tokens,
                do_sample=False,
                streamer=streamer,
                pad_token_id=tokenizer.eos_token_id,
            )

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result: list[Any] = []
    begin = time.perf_counter()
    worker = threading.Thread(target=lambda: result.append(generate(streamer)))
    worker.start()
    first = None
    parts = []
    for piece in streamer:
        if piece and first is None:
            first = time.perf_counter()
        parts.append(piece)
    worker.join()
    end = time.perf_counter()
    assert first is not None
    prompt_tokens = int(inputs["input_ids"].shape[1])
    completion = int(result[0].shape[1]) - prompt_tokens
    again = generate()
    text = tokenizer.decode(result[0][0, prompt_tokens:], skip_special_tokens=True)
    out.update(
        ttft_s=first - begin,
        total_s=end - begin,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        decode_tok_s=(completion - 1) / (end - first),
        rss_mb=rss_mb(),
        text=text,
        repeat_same=bool(torch.equal(again, result[0])),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engine", choices=["llama", "transformers"])
    parser.add_argument("model", help="the .gguf file")
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    run = run_llama if args.engine == "llama" else run_transformers
    result = run(args.model, args.max_tokens, args.threads)
    json.dump({"engine": args.engine, **result}, sys.stdout)


if __name__ == "__main__":
    main()
