"""Pipeline overhead of the local executor: per step, and a fully cached re-run.

    python benchmarks/pipeline_overhead.py            # 20-step chain, 7 repeats
    python benchmarks/pipeline_overhead.py --steps 50 --repeat 3 --json out.json

A chain of N trivial steps (``inc(x) = x + 1``) runs in a fresh temporary workspace (SQLite, local
artifacts). "Per step" is the wall time of an uncached run (new parameter each time, so every step
runs: trace, cache lookup, execution, JSON output stored and fsynced, step run written and audited)
divided by N; the pipeline run's own start and end are included. "Cached re-run" is the wall time
of running the same pipeline again with the same parameter: every step a verified cache hit.
Figures are medians over the repeats, after one untimed warm-up run (schema creation, imports).
Targets: ≤ 5 ms per step, ≤ 0.5 s for the cached re-run of 20 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_PER_STEP_MS = 5.0
TARGET_CACHED_S = 0.5


def main() -> int:
    """Measure and print both figures; exit 0 (or 1 with --strict when a target is missed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the samples and figures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        for var in [v for v in os.environ if v.startswith("CAUCE_")]:
            del os.environ[var]
        os.environ["CAUCE_HOME"] = home
        import cauce
        import cauce.workspace

        @cauce.step
        def inc(x: int) -> int:
            return x + 1

        @cauce.pipeline
        def chain(start: int = 0) -> object:
            value = inc(start)
            for _ in range(args.steps - 1):
                value = inc(value)
            return value

        chain.run(start=-1)  # warm-up: schema, imports, first connections
        # The share of a step that is the artifact store's durable write of its output (a temp
        # file, then copy, fsync, rename and fsync of the folder), timed alone in each repeat
        # since disk latency drifts.
        store = cauce.workspace.current().artifacts
        uncached, cached, writes = [], [], []
        for i in range(args.repeat):
            began = time.perf_counter()
            for j in range(args.steps):
                store.put_bytes(f"bench-{i}-{j}".encode())
            writes.append((time.perf_counter() - began) / args.steps)
            began = time.perf_counter()
            run = chain.run(start=1000 * (i + 1))
            uncached.append(time.perf_counter() - began)
            assert run.succeeded and not any(s.cache_hit for s in run.steps.values())
            began = time.perf_counter()
            again = chain.run(start=1000 * (i + 1))
            cached.append(time.perf_counter() - began)
            assert all(s.cache_hit for s in again.steps.values())
            assert again.result() == 1000 * (i + 1) + args.steps

    per_step_ms = statistics.median(uncached) / args.steps * 1000
    cached_s = statistics.median(cached)
    write_ms = statistics.median(writes) * 1000
    rows = [
        (
            f"per step, uncached ({args.steps}-step chain)",
            f"{per_step_ms:.2f} ms",
            f"≤ {TARGET_PER_STEP_MS:g} ms",
            per_step_ms <= TARGET_PER_STEP_MS,
        ),
        (
            f"fully cached re-run ({args.steps} steps)",
            f"{cached_s:.3f} s",
            f"≤ {TARGET_CACHED_S:g} s",
            cached_s <= TARGET_CACHED_S,
        ),
    ]
    print(f"Pipeline overhead, local executor, Python {sys.version.split()[0]}")
    for label, value, target, ok in rows:
        print(f"  {label:40} {value:>10}   target {target:8} {'ok' if ok else 'MISSED'}")
    print(
        f"  {'  of which: durable artifact write':40} {write_ms:7.2f} ms   "
        f"(per step; without it {per_step_ms - write_ms:.2f} ms)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "steps": args.steps,
                    "per_step_ms": per_step_ms,
                    "cached_rerun_s": cached_s,
                    "artifact_write_ms": write_ms,
                    "uncached_run_s": uncached,
                    "cached_run_s": cached,
                },
                indent=2,
            )
        )
    return 1 if args.strict and not all(ok for *_, ok in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
