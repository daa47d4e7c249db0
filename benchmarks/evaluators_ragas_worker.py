"""ragas' side of the evaluator benchmark, run by ``evaluators_vs_ragas.py`` in ragas' venv.

It imports only the standard library at the top, so the benchmark can ship it to any
interpreter. It reads the rows (not timed), then times, per metric, two ways of scoring the
whole column with ragas 0.4.3's non-LLM metrics:

- ``evaluate``: ``ragas.evaluate(EvaluationDataset.from_list(rows), metrics=[metric],
  show_progress=False)`` with the legacy ``ragas.metrics`` class (``ExactMatch``,
  ``RougeScore``, ``BleuScore``), building the dataset inside the timing as a user would;
- ``batch``: the ``ragas.metrics.collections`` class's ``batch_score(inputs)``, with the input
  dicts built before the timing.

Both must give the same scores; the ``batch`` ones are written out for the comparison with
Cauce.

Example::

    .bench/ragas-venv/bin/python benchmarks/evaluators_ragas_worker.py \\
        --rows .bench/evals/rows-1000-seed5.jsonl --out r.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

NAMES = {"exact_match": "ExactMatch", "rouge_l": "RougeScore", "bleu": "BleuScore"}


def legacy_metric(name: str) -> Any:
    """The ``ragas.metrics`` class for ``name`` (deprecated in 0.4 but what evaluate() takes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ragas.metrics as legacy

        return getattr(legacy, NAMES[name])()


def collection_metric(name: str) -> Any:
    """The ``ragas.metrics.collections`` class for ``name``."""
    import ragas.metrics.collections as collections

    return getattr(collections, NAMES[name])()


def time_evaluate(name: str, rows: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """One ``ragas.evaluate`` over every row with one metric; seconds and scores."""
    from ragas import EvaluationDataset, evaluate

    metric = legacy_metric(name)
    started = time.perf_counter()
    dataset = EvaluationDataset.from_list(
        [
            {"user_input": r["question"], "response": r["answer"], "reference": r["reference"]}
            for r in rows
        ]
    )
    result = evaluate(dataset, metrics=[metric], show_progress=False)
    seconds = time.perf_counter() - started
    frame = result.to_pandas()
    # the score column's name varies (``rouge_score(mode=fmeasure)``): it is the one added last
    [column] = [c for c in frame.columns if c not in ("user_input", "response", "reference")]
    return seconds, [float(v) for v in frame[column]]


def time_batch(name: str, rows: list[dict[str, Any]]) -> tuple[float, float, list[float]]:
    """One ``batch_score`` over every row; seconds, CPU seconds and scores."""
    metric = collection_metric(name)
    inputs = [{"reference": r["reference"], "response": r["answer"]} for r in rows]
    started, cpu = time.perf_counter(), time.process_time()
    results = metric.batch_score(inputs)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return seconds, cpu, [float(r.value) for r in results]


def main() -> None:
    """Time every metric both ways ``--reps`` times; write the medians and scores as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--evaluate-reps", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import ragas

    with args.rows.open() as f:
        rows = [json.loads(line) for line in f]
    batch: dict[str, list[float]] = {n: [] for n in NAMES}
    batch_cpu: dict[str, list[float]] = {n: [] for n in NAMES}
    whole: dict[str, list[float]] = {n: [] for n in NAMES}
    values: dict[str, list[float]] = {}
    for name in NAMES:
        # one untimed pass over a few rows: imports and first-call set-up happen here
        time_evaluate(name, rows[:10])
        time_batch(name, rows[:10])
        for _ in range(args.evaluate_reps):
            seconds, by_evaluate = time_evaluate(name, rows)
            whole[name].append(seconds)
        for _ in range(args.reps):
            seconds, cpu, by_batch = time_batch(name, rows)
            batch[name].append(seconds)
            batch_cpu[name].append(cpu)
        pairs = zip(by_evaluate, by_batch, strict=True)
        mismatch = sum(not math.isclose(a, b, abs_tol=1e-12) for a, b in pairs)
        if mismatch:
            raise SystemExit(f"{name}: evaluate() and batch_score differ on {mismatch} rows")
        values[name] = by_batch
        print(
            f"[ragas] {name}: batch_score {statistics.median(batch[name]):.3f} s, "
            f"evaluate() {statistics.median(whole[name]):.3f} s",
            flush=True,
        )
    args.out.write_text(
        json.dumps(
            {
                "version": ragas.__version__,
                "rows": len(rows),
                "batch_samples_s": batch,
                "evaluate_samples_s": whole,
                "batch_median_s": {n: statistics.median(s) for n, s in batch.items()},
                "batch_cpu_samples_s": batch_cpu,
                "batch_cpu_median_s": {n: statistics.median(s) for n, s in batch_cpu.items()},
                "evaluate_median_s": {n: statistics.median(s) for n, s in whole.items()},
                "values": values,
            }
        )
    )


if __name__ == "__main__":
    main()
