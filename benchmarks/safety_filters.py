"""All input safety filters together (injection + PII + blocklist) on a 1,000-token prompt.

The prompt (≈ 4,500 characters) is a retrieval-augmented support request written from a seed:
an instruction, context passages about deployments and tickets (with dates, amounts, order
numbers, one email address and one phone number) and a question: realistic text with the
digits and punctuation that the PII patterns and the decoders look at. The classifier is
trained before timing. Target: p50 <= 2 ms (``--strict``: exit 1 when missed).

Example::

    python benchmarks/safety_filters.py --repetitions 300 --json .bench/safety-filters.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from cauce.genai.safety.filters import SafetyPolicy
from cauce.genai.safety.injection import warm

PASSAGES = [
    "The deployment pipeline trains the churn model every night and registers a new version "
    "when it beats the champion on the held-out data.",
    "The monitor compares the collector's records with the reference profile and raises an "
    "alert when the drift of a feature exceeds its threshold.",
    "Customer {n} wrote on 2026-{m:02d}-{d:02d} that the invoice for March was wrong by "
    "{a}.50 euros and asked for a correction.",
    "The rollout moved {p}% of the traffic to the green deployment and waited for the analysis "
    "before the next step.",
    "Latency p99 stayed under {a} ms while the error rate was 0.{d}% during the canary phase.",
    "The agent restarted the router twice, but the customer still could not connect on "
    "Tuesday; ticket #{n} was escalated to the network team.",
    "Refunds above 200 euros need a second approval; the finance team answers within two "
    "working days.",
    "The new index version was built from {p} changed documents; the others kept their vectors.",
]


def prompt(seed: int = 7) -> str:
    rng = random.Random(seed)
    parts = [
        "You answer support questions using only the context below. If the answer is not in "
        "the context, say you do not know.\n\nContext:\n"
    ]
    while sum(map(len, parts)) < 4200:
        parts.append(rng.choice(PASSAGES).format(
            n=rng.randint(1000, 9999), m=rng.randint(1, 12), d=rng.randint(1, 28),
            a=rng.randint(10, 99), p=rng.randint(5, 60),
        ) + ("\n" if rng.random() < 0.3 else " "))  # fmt: skip
    parts.append(
        "\nQuestion from maria.lopez@example.com (+34 612 345 678): why was my refund for "
        "order 4471 not approved yet, and when will it be?"
    )
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    policy = SafetyPolicy.from_spec({
        "input": [
            {"filter": "injection", "action": "block", "threshold": 0.5},
            {"filter": "pii", "action": "redact"},
            {"filter": "blocklist", "action": "block",
             "terms": ["project falcon", "internal only", "acme confidential"]},
        ]
    })  # fmt: skip
    text = prompt()
    messages = [{"role": "user", "content": text}]
    warm()
    verdict = policy.check_input(messages)
    assert not verdict.blocked, verdict.decisions
    samples = []
    for _ in range(args.repetitions):
        started = time.perf_counter()
        policy.check_input(messages)
        samples.append(time.perf_counter() - started)
    samples.sort()
    p50 = samples[len(samples) // 2] * 1000
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000
    ok = p50 <= 2.0
    # The output side on the same text as a completion: whole, and streamed in 4-character
    # deltas through the guard (what a streamed answer pays per delta).
    from cauce.genai.safety.canary import new_canary

    output = SafetyPolicy.from_spec({
        "output": [
            {"filter": "canary", "action": "block"},
            {"filter": "pii", "action": "redact"},
            {"filter": "blocklist", "action": "redact", "terms": ["project falcon"]},
        ]
    })  # fmt: skip
    canary = new_canary()
    whole = output.check_output(text, canary=canary)
    deltas = [text[i : i + 4] for i in range(0, len(text), 4)]
    started = time.perf_counter()
    rounds = max(1, args.repetitions // 30)
    for _ in range(rounds):
        guard = output.output_guard(canary)
        streamed = "".join(guard.feed(d) for d in deltas) + guard.finish()
    delta_us = (time.perf_counter() - started) / (rounds * len(deltas)) * 1e6
    assert streamed == whole.text, "the stream guard and the whole check disagree"
    # What an index build pays per chunk for the injection scan (chunks of ~200 tokens).
    from cauce.genai.safety.injection import detect_injection

    chunks = [text[i : i + 900] for i in range(0, len(text) - 900, 300)]
    started = time.perf_counter()
    rounds = max(1, args.repetitions // 10)
    for _ in range(rounds):
        for chunk in chunks:
            detect_injection(chunk)
    chunk_ms = (time.perf_counter() - started) / (rounds * len(chunks)) * 1000
    print(f"prompt: {len(text)} characters (~{len(text) // 4.5:.0f} tokens); "
          f"decisions: {[d['filter'] for d in verdict.decisions]}")  # fmt: skip
    print(
        f"input filters (injection + pii + blocklist), {args.repetitions} repetitions: "
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms (target p50 <= 2 ms): {'PASS' if ok else 'FAIL'}"
    )
    print(f"injection scan of one ~200-token index chunk: {chunk_ms:.3f} ms")
    print(f"output filters (canary + pii + blocklist) streamed in {len(deltas)} deltas of 4 "
          f"characters: {delta_us:.0f} us per delta, same text as the whole check")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "characters": len(text), "p50_ms": p50, "p99_ms": p99, "chunk_scan_ms": chunk_ms,
            "stream_us_per_delta": delta_us,
            "samples_s": samples, "target_met": ok,
        }, indent=2))  # fmt: skip
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
