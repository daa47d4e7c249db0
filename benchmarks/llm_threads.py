"""How many threads the local LLM should run on: ``LocalLLM(threads=N)`` for N from 1 to the
CPUs this process may use, on the GenAI demo's shape of request.

One process loads the packaged SmolLM2-135M-Instruct GGUF once per thread count, then the
counts take turns for ``--rounds`` rounds, each answering the same RAG-shaped chat request
(the first bundled document's opening and a question, about 180 prompt tokens; greedy, at most
40 answer tokens, as the demo's prompts ask). ``--busy`` runs a process that spins on one CPU
beside it, as a second test worker does in ``make test``. Printed: each count's median and
range of seconds per answer. Then slots: the same request ``--rounds`` x 2 times from 1 slot
one at a time, and from ``LocalLLM(slots=N)`` (N the CPUs, threads at their default) N at a
time: the seconds each took for all the answers.

Example::

    python benchmarks/llm_threads.py                 # ~1 min on 2 cores
    python benchmarks/llm_threads.py --busy
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from peers import load_average, machine

QUESTION = "\nQuestion: what does a canary rollout do?\nAnswer:"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="spin one CPU beside it")
    args = parser.parse_args()

    from cauce.demo.genai import data_folder
    from cauce.genai.llms import LocalLLM, packaged_model_path

    document = sorted((data_folder() / "docs").glob("*.md"))[0].read_text()[:1500]
    messages = [{"role": "user", "content": document + QUESTION}]
    counts = list(range(1, len(os.sched_getaffinity(0)) + 1))
    models = {n: LocalLLM(packaged_model_path(), threads=n) for n in counts}
    spinner = None
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        load_before = load_average()
        seconds: dict[int, list[float]] = {n: [] for n in counts}
        for _ in range(args.rounds):
            for n, llm in models.items():
                started = time.perf_counter()
                llm.chat(messages, max_tokens=40, temperature=0)
                seconds[n].append(time.perf_counter() - started)
    finally:
        if spinner is not None:
            spinner.kill()
    print(
        f"{machine()}; prompt {models[1].count_tokens(messages)} tokens, at most 40 answer "
        f"tokens, greedy, {args.rounds} rounds{', one CPU spinning beside it' if args.busy else ''}"
        f", load {_shown(load_before)} -> {_shown(load_average())}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}"
    )
    for n, taken in seconds.items():
        print(
            f"threads={n}: median {statistics.median(taken):.2f} s per answer "
            f"(range {min(taken):.2f}-{max(taken):.2f})"
        )
    for llm in models.values():
        llm.close()
    for slots in (1, len(counts)):
        with LocalLLM(packaged_model_path(), slots=slots) as llm:
            llm.chat(messages, max_tokens=4)  # warm
            started = time.perf_counter()
            with ThreadPoolExecutor(slots) as pool:
                answers = list(
                    pool.map(
                        lambda _: llm.chat(messages, max_tokens=40, temperature=0).text,
                        range(args.rounds * 2),
                    )
                )
            taken = time.perf_counter() - started
        assert len(set(answers)) == 1, "slots answered the same request differently"
        print(
            f"slots={slots} ({llm.threads} thread(s) each), {slots} at a time: "
            f"{len(answers)} answers in {taken:.2f} s"
        )


def _shown(load: float | None) -> str:
    return "?" if load is None else f"{load:.1f}"


if __name__ == "__main__":
    main()
