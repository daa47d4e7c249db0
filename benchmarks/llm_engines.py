"""The local LLM's two engine options, side by side on the packaged SmolLM2-135M-Instruct GGUF.

- llama.cpp through llama-cpp-python, as Cauce's ``LocalLLM`` runs it (the project's venv);
- transformers reading the same GGUF file (it dequantizes the weights into torch tensors), in its
  own venv ``.bench/llm-transformers`` (``torch==2.13.0``, ``transformers>=5,<6``, ``gguf`` and
  ``accelerate``, which transformers requires to load a GGUF file), created on first use.

Each run is a fresh process (``llm_engine_worker.py``) on 2 threads with
``OMP_WAIT_POLICY=PASSIVE`` (both engines use OpenMP): load the model, stream one
greedy answer of at most ``--max-tokens`` tokens to the same chat prompt (seed 0), answer it a
second time to check that greedy decoding repeats. The sides take turns for ``--rounds``
rounds; a figure is the median over the rounds. Printed: load time (import + load), resident
memory after load and after generating, time to first token, decode speed (tokens after the
first over the time after the first), and the llama.cpp / transformers ratios.

Example::

    python benchmarks/llm_engines.py --json .bench/llm_engines.json     # ~2 min on 2 cores
    python benchmarks/llm_engines.py --quick --llama-only               # smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("llm_engine_worker.py")
DEFAULT_VENV = REPO / ".bench" / "llm-transformers"
TRANSFORMERS_REQUIREMENTS = ("torch==2.13.0", "transformers>=5,<6", "gguf>=0.17", "accelerate")
TRANSFORMERS_READY = (
    "import torch, transformers, gguf, accelerate; assert transformers.__version__[0] == '5'"
)
FIGURES = ("load_s", "rss_load_mb", "rss_mb", "ttft_s", "decode_tok_s", "completion_tokens")


def run_worker(python: Path, engine: str, model: Path, max_tokens: int) -> dict[str, Any]:
    """One fresh process of ``engine``; its JSON report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    # OpenMP threads that spin while waiting collapse both engines on a shared 2-core machine
    # (transformers: 1.4 against 13.7 tokens/s); Cauce's LocalLLM sets this itself.
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_WAIT_POLICY="PASSIVE",
    )
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), str(WORKER), engine, str(model), "--max-tokens", str(max_tokens)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if done.returncode != 0:
        sys.exit(f"{engine} worker failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    report["process_s"] = time.perf_counter() - started
    return report


def common_prefix(a: str, b: str) -> int:
    """How many leading characters two texts share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="one round of 20 tokens")
    parser.add_argument("--llama-only", action="store_true", help="skip transformers")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    rounds, max_tokens = (1, 20) if args.quick else (args.rounds, args.max_tokens)

    sys.path.insert(0, str(REPO / "src"))
    from cauce.genai.llms import packaged_model_path

    model = packaged_model_path()
    engines: dict[str, Path] = {"llama": Path(sys.executable)}
    if not args.llama_only:
        created = time.perf_counter()
        engines["transformers"] = ensure_venv(
            args.venv, TRANSFORMERS_REQUIREMENTS, TRANSFORMERS_READY
        )
        note(f"transformers venv ready in {time.perf_counter() - created:.1f} s")
    load_before = load_average()
    samples: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for i in range(rounds):
        order = list(engines) if i % 2 == 0 else list(reversed(engines))
        for engine in order:
            note(f"round {i + 1}/{rounds}: {engine}")
            samples[engine].append(run_worker(engines[engine], engine, model, max_tokens))

    medians = {
        e: {f: statistics.median(s[f] for s in runs) for f in FIGURES}
        for e, runs in samples.items()
    }
    print(
        f"\nmodel: {model.name} ({model.stat().st_size / 1e6:.0f} MB), {max_tokens} tokens max, "
        f"greedy, 2 threads, {rounds} rounds, load {load_before} -> {load_average()}"
    )
    header = f"{'':14}" + "".join(f"{e:>16}" for e in engines)
    print(header)
    labels = {
        "load_s": "load (s)",
        "rss_load_mb": "RSS load (MB)",
        "rss_mb": "RSS after (MB)",
        "ttft_s": "first token (s)",
        "decode_tok_s": "decode tok/s",
        "completion_tokens": "tokens",
    }
    for figure, label in labels.items():
        print(f"{label:14}" + "".join(f"{medians[e][figure]:>16.3f}" for e in engines))
    for engine, runs in samples.items():
        repeat = all(r["repeat_same"] for r in runs) and len({r["text"] for r in runs}) == 1
        print(
            f"{engine}: greedy answer identical in every run and repeat: {repeat}; "
            f"prompt tokens {runs[0]['prompt_tokens']}"
        )
    if "transformers" in medians:
        llama, hf = medians["llama"], medians["transformers"]
        speed = llama["decode_tok_s"] / hf["decode_tok_s"]
        print(
            f"llama.cpp / transformers: decode speed {speed:.1f}x, "
            f"first token {hf['ttft_s'] / llama['ttft_s']:.1f}x sooner, load "
            f"{hf['load_s'] / llama['load_s']:.1f}x faster, RSS after "
            f"{hf['rss_mb'] / llama['rss_mb']:.1f}x smaller"
        )
        a, b = samples["llama"][0]["text"], samples["transformers"][0]["text"]
        print(
            f"the two greedy answers share their first {common_prefix(a, b)} characters "
            f"(of {len(a)} and {len(b)})"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "when": datetime.datetime.now(datetime.UTC).isoformat(),
                    "machine": machine(load_before=load_before, load_after=load_average()),
                    "max_tokens": max_tokens,
                    "samples": samples,
                    "medians": medians,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
