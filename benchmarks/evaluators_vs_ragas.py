"""Cauce's offline evaluators against ragas' non-LLM metrics, on the same 10,000 rows.

The rows (question, answer, reference, contexts, retrieved ids, graded relevance) are generated
in code from a seed and written once as JSON lines under ``.bench/evals/`` (gitignored). A
reference is one sentence of 8-25 words; an answer is a copy of it (15%), an edited copy (words
dropped, replaced, inserted, swapped: 50%) or another sentence (35%). Answers and references
are single sentences on purpose: ragas' ``BleuScore`` splits both texts at ". " and then scores
only the answer's first sentence against all the reference's sentences (it zips the lists), so
only single sentences give both sides the same BLEU to compute.

Both sides read the file first (not timed), then time each metric over the whole column:

============= ================================================ ================================
metric        Cauce                                            ragas 0.4.3 (non-LLM)
============= ================================================ ================================
exact match   ``metrics.exact_match(normalize=False)``         ``ExactMatch``
ROUGE-L       ``metrics.rouge_l(stem=True)``                   ``RougeScore()`` (rougeL,
                                                               fmeasure; it always stems)
BLEU          ``metrics.sentence_bleu(effective_order=False)`` ``BleuScore()`` (sacrebleu
              / 100                                            ``corpus_bleu`` per row / 100)
============= ================================================ ================================

ragas runs in its own venv (``.bench/ragas-venv``, created on first use with ``pip install
ragas==0.4.3 langchain-community==0.4.1 rouge-score sacrebleu``; langchain-community 0.4.2
removed a module ragas 0.4.3 imports), with no OpenAI key and ``RAGAS_DO_NOT_TRACK=true``, by
``evaluators_ragas_worker.py``, two ways per metric: ``ragas.evaluate(dataset, metrics=[m])``
(what its users call) and the newer ``ragas.metrics.collections`` metric's ``batch_score``
(no dataset machinery: the faster of the two). The ratio that counts against the target
(Cauce >= 10x faster) is against the faster ragas path, summed over the three metrics; each
metric's ratios are printed too. Cauce's other evaluators (token F1, corpus BLEU, retrieval
precision/recall/MRR/NDCG) have no non-LLM counterpart in ragas with the same definition: their
times are printed alone. Every row's scores are compared between the sides; a difference is
printed (the exit status stays 0 unless ``--strict``).

Example::

    python benchmarks/evaluators_vs_ragas.py --json .bench/evals.json     # full run, ~3 min
    python benchmarks/evaluators_vs_ragas.py --quick --cauce-only          # smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("evaluators_ragas_worker.py")
BENCH = REPO / ".bench"
DEFAULT_VENV = BENCH / "ragas-venv"
DATA_DIR = BENCH / "evals"
RAGAS_REQUIREMENTS = (
    "ragas==0.4.3",
    "langchain-community==0.4.1",
    "rouge-score==0.1.2",
    "sacrebleu==2.6.0",
)
RAGAS_READY = (
    "import ragas, rouge_score, sacrebleu; from ragas import evaluate; "
    "assert ragas.__version__ == '0.4.3', ragas.__version__"
)
FULL_ROWS = 10_000
QUICK_ROWS = 1_000
SEED = 5
RATIO_TARGET = 10.0
COMPARED = ("exact_match", "rouge_l", "bleu")

_WORD_LIST = """
the a of to and in is for on that with as by it from at this be are was an or which their
model data system answer question service user time city river bridge train station museum
library report policy price market energy water forest mountain island harbour school doctor
patient engine battery network server database index query document version release team
manager customer order invoice payment account budget project plan result test value metric
signal alert window storage memory cluster region country capital population language history
science music film book author painter century war treaty election council law court tax
opened closed built moved grew fell rose reached measured stored sent received approved
rejected signed launched printed painted wrote founded joined left increased decreased
north south east west large small old new first last main local national public private
early late fast slow high low many few several every each other same different daily yearly
one two three four five six seven eight nine ten hundred thousand million percent
"""
WORDS = _WORD_LIST.split()


# -- the data -------------------------------------------------------------------------------


def _sentence(rng: random.Random, low: int = 8, high: int = 25) -> list[str]:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    if rng.random() < 0.3:
        words.insert(rng.randint(0, len(words)), str(rng.randint(2, 2030)))
    return words


def _edit(rng: random.Random, words: list[str]) -> list[str]:
    out = list(words)
    for _ in range(rng.randint(1, 5)):
        op = rng.random()
        i = rng.randrange(len(out)) if out else 0
        if op < 0.3 and len(out) > 3:
            del out[i]
        elif op < 0.6 and out:
            out[i] = rng.choice(WORDS)
        elif op < 0.8:
            out.insert(i, rng.choice(WORDS))
        elif len(out) > 1:
            j = rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
    return out


def _text(words: list[str]) -> str:
    return " ".join(words).capitalize() + "."


def generate(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` generated evaluation rows to ``path`` as JSON lines."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        for i in range(rows):
            reference = _sentence(rng)
            kind = rng.random()
            if kind < 0.15:
                answer = list(reference)
            elif kind < 0.65:
                answer = _edit(rng, reference)
            else:
                answer = _sentence(rng)
            passages = [
                " ".join(_text(_sentence(rng)) for _ in range(rng.randint(2, 4))) for _ in range(3)
            ]
            passages[rng.randrange(3)] += " " + _text(reference)
            pool = [f"doc-{i}-{j}" for j in range(30)]
            relevance = {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(pool, 6)}
            retrieved = rng.sample(pool, 10)
            row = {
                "question": "What " + " ".join(_sentence(rng, 5, 10)) + "?",
                "answer": _text(answer),
                "reference": _text(reference),
                "contexts": passages,
                "retrieved": retrieved,
                "relevance": relevance,
            }
            out.write(json.dumps(row) + "\n")
    os.replace(tmp, path)


def ensure_data(rows: int, seed: int) -> Path:
    """The JSON-lines file for ``rows`` and ``seed``, generated if missing."""
    path = DATA_DIR / f"rows-{rows}-seed{seed}.jsonl"
    if not path.exists():
        note(f"generating {rows:,} rows into {path}")
        generate(path, rows, seed)
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path`` (never timed)."""
    with path.open() as f:
        return [json.loads(line) for line in f]


# -- Cauce ------------------------------------------------------------------------------------


def _clear_caches() -> None:
    """Forget tokenisations and stems from an earlier repetition: each one starts cold."""
    from cauce.genai.evals import metrics

    metrics._tokenize_13a.cache_clear()
    metrics._porter.cache_clear()


def run_cauce(path: Path, reps: int) -> dict[str, Any]:
    """Time each Cauce evaluator over the whole file ``reps`` times; medians and the scores."""
    import numpy as np

    import cauce
    from cauce.genai.evals import metrics, retrieval

    rows = read_rows(path)
    answers = [r["answer"] for r in rows]
    references = [r["reference"] for r in rows]
    retrieved = [r["retrieved"] for r in rows]
    relevance = [r["relevance"] for r in rows]

    jobs: dict[str, Callable[[], Any]] = {
        "exact_match": lambda: metrics.exact_match(answers, references, normalize=False),
        "rouge_l": lambda: metrics.rouge_l(answers, references, stem=True),
        "bleu": lambda: metrics.sentence_bleu(answers, references, effective_order=False) / 100,
        "exact_match (SQuAD-normalised)": lambda: metrics.exact_match(answers, references),
        "token_f1": lambda: metrics.token_f1(answers, references),
        "rouge_l (no stemmer)": lambda: metrics.rouge_l(answers, references),
        "corpus_bleu": lambda: metrics.corpus_bleu(answers, references),
        "precision@5": lambda: retrieval.precision_at_k(retrieved, relevance, 5),
        "recall@5": lambda: retrieval.recall_at_k(retrieved, relevance, 5),
        "mrr": lambda: retrieval.mrr(retrieved, relevance),
        "ndcg@10": lambda: retrieval.ndcg_at_k(retrieved, relevance, 10),
    }
    # one untimed pass over a few rows: imports (NLTK's stemmer, NumPy) happen here, as the
    # ragas worker's do when it warms up
    warm = (answers, references, retrieved, relevance)
    answers, references, retrieved, relevance = (c[:20] for c in warm)  # type: ignore[assignment]
    for job in jobs.values():
        job()
    answers, references, retrieved, relevance = warm

    samples: dict[str, list[float]] = {name: [] for name in jobs}
    cpu: dict[str, list[float]] = {name: [] for name in jobs}
    values: dict[str, list[float]] = {}
    for _ in range(reps):
        for name, job in jobs.items():
            _clear_caches()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = job()
            samples[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
            if name in COMPARED:
                values[name] = np.asarray(result, dtype=float).tolist()
    return {
        "version": cauce.__version__,
        "rows": len(rows),
        "samples_s": samples,
        "median_s": {name: statistics.median(s) for name, s in samples.items()},
        "cpu_samples_s": cpu,
        "cpu_median_s": {name: statistics.median(s) for name, s in cpu.items()},
        "values": values,
    }


# -- ragas ------------------------------------------------------------------------------------


def run_ragas(python: Path, path: Path, reps: int) -> dict[str, Any]:
    """Run the ragas worker on ``path`` in its venv; its figures."""
    out = DATA_DIR / "ragas-result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUCE_", "OPENAI_"))}
    env["RAGAS_DO_NOT_TRACK"] = "true"  # no telemetry thread reaching for the network
    cmd = [str(python), str(WORKER), "--rows", str(path), "--reps", str(reps), "--out", str(out)]
    note("ragas: timing its metrics (evaluate() and batch_score) in its own venv")
    proc = subprocess.run(cmd, env=env, cwd=DATA_DIR, stdout=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"the ragas side failed (exit {proc.returncode}); its output is above")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# -- comparing and reporting ------------------------------------------------------------------


def compare(cauce_side: dict[str, Any], ragas_side: dict[str, Any] | None) -> dict[str, Any]:
    """Per compared metric: the largest score difference and how many rows differ."""
    if ragas_side is None:
        return {}
    out = {}
    for name in COMPARED:
        mine, theirs = cauce_side["values"][name], ragas_side["values"][name]
        gaps = [abs(a - b) for a, b in zip(mine, theirs, strict=True)]
        out[name] = {"max_abs_diff": max(gaps), "rows_differing": sum(g > 1e-9 for g in gaps)}
    return out


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def report(result: dict[str, Any]) -> str:
    """The timing table, the ratios and the verdict."""
    c, r = result["cauce"], result.get("ragas")
    lines = [
        f"Cauce {c['version']} vs ragas {r['version'] if r else '(not run)'}; {c['rows']:,} rows; "
        f"medians; {result['machine']['cpu_count']} CPUs, Python {result['machine']['python']}",
        "",
        "metric       | Cauce      | ragas batch_score | ragas evaluate() | ratio (batch) "
        "| ratio (evaluate) | scores equal",
        "-------------+------------+-------------------+------------------+---------------"
        "+------------------+-------------",
    ]
    totals = {"cauce": 0.0, "batch": 0.0, "evaluate": 0.0}
    for name in COMPARED:
        mine = c["median_s"][name]
        batch = r["batch_median_s"][name] if r else None
        whole = r["evaluate_median_s"][name] if r else None
        totals["cauce"] += mine
        totals["batch"] += batch or 0.0
        totals["evaluate"] += whole or 0.0
        same = result["agreement"].get(name)
        lines.append(
            f"{name:<12} | {_ms(mine):>10} | {_ms(batch):>17} | {_ms(whole):>16} | "
            f"{(f'{batch / mine:.1f}x' if batch else '-'):>13} | "
            f"{(f'{whole / mine:.1f}x' if whole else '-'):>16} | "
            + (
                "yes"
                if same and same["rows_differing"] == 0
                else (f"{same['rows_differing']} rows differ" if same else "-")
            )
        )
    batch_total = _ms(totals["batch"] if r else None)
    evaluate_total = _ms(totals["evaluate"] if r else None)
    lines.append(
        f"{'all three':<12} | {_ms(totals['cauce']):>10} | "
        f"{batch_total:>17} | {evaluate_total:>16} | "
        + (
            f"{totals['batch'] / totals['cauce']:.1f}x".rjust(13)
            + " | "
            + f"{totals['evaluate'] / totals['cauce']:.1f}x".rjust(16)
            if r
            else f"{'-':>13} | {'-':>16}"
        )
        + " |"
    )
    if r:
        mine_cpu = sum(c["cpu_median_s"][n] for n in COMPARED)
        batch_cpu = sum(r["batch_cpu_median_s"][n] for n in COMPARED)
        lines.append(
            f"CPU time, all three: Cauce {_ms(mine_cpu)}, ragas batch_score {_ms(batch_cpu)} "
            f"({batch_cpu / mine_cpu:.1f}x); per metric: "
            + ", ".join(
                f"{n} {r['batch_cpu_median_s'][n] / c['cpu_median_s'][n]:.1f}x" for n in COMPARED
            )
        )
    lines.append("")
    lines.append("Cauce only (no ragas non-LLM metric with the same definition):")
    for name, seconds in c["median_s"].items():
        if name not in COMPARED:
            lines.append(f"  {name:<32} {_ms(seconds):>10}")
    if r:
        ratio = totals["batch"] / totals["cauce"]
        verdict = "PASS" if ratio >= RATIO_TARGET else "MISS"
        lines.append("")
        lines.append(
            f"target: Cauce >= {RATIO_TARGET:.0f}x faster than ragas' fastest path over the three "
            f"metrics: {ratio:.1f}x {verdict} (against evaluate(): "
            f"{totals['evaluate'] / totals['cauce']:.1f}x)"
        )
        result["ratio"] = ratio
        result["target_met"] = ratio >= RATIO_TARGET
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run both sides, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help=f"rows (default {FULL_ROWS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per side (median)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--cauce-only", action="store_true", help="skip ragas")
    parser.add_argument("--ragas-python", type=Path, help="an interpreter that has ragas")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--json", type=Path, help="write every sample and setting here")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a miss or difference")
    args = parser.parse_args(argv)
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)

    path = ensure_data(rows, args.seed)
    load_before = load_average()
    ragas_side = None
    if not args.cauce_only:
        python = args.ragas_python or ensure_venv(args.venv, RAGAS_REQUIREMENTS, RAGAS_READY)
        ragas_side = run_ragas(python, path, args.reps)
    note("Cauce: timing its evaluators")
    cauce_side = run_cauce(path, args.reps)
    result: dict[str, Any] = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "seed": args.seed,
        "reps": args.reps,
        "machine": machine(load_before=load_before, load_after=load_average()),
        "cauce": cauce_side,
        "ragas": ragas_side,
        "agreement": compare(cauce_side, ragas_side),
    }
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    differ = any(a["rows_differing"] for a in result["agreement"].values())
    if args.strict and (differ or result.get("target_met") is False):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
