"""Vector retrieval: Cauce's index (usearch HNSW) against chromadb, on the same embeddings.

The data (default 100,000 chunk vectors x 384 dimensions and 1,000 queries) is generated in
code from a seed, shaped like sentence embeddings: a decaying spectrum in a random basis, a
direction shared by every vector (unrelated vectors have a cosine near 0.13, a query and its
nearest chunk near 0.85, as with MiniLM), 200 topics of 10 subtopics each with Zipf-distributed
sizes, every vector normalised.
The queries are drawn the same way and are not in the index (as questions lie near, not on, the
passages that answer them). It is written once under ``.bench/retrieval/`` (gitignored), with
the exact top-10 of every query (brute force, float32), the ground truth for recall@10.

- Cauce, in this process: ``SearchIndex`` over the vectors (chunk ids, metadata ``team`` in 5
  values), built with its default HNSW settings (connectivity 16, expansion_add 128,
  expansion_search 32, f16) and saved next to the data so that a second run loads it instead of
  building; a query is ``index.search_vector(q, 10, model_id=...)``, which returns hits with
  chunk id, document id, text, score and metadata.
- chromadb: ``retrieval_chromadb_worker.py`` in chromadb's own venv (``.bench/chromadb-venv``,
  created on first use with ``pip install chromadb==1.5.9 numpy``), the embedded
  ``PersistentClient`` with a collection configured the same way (cosine, M = connectivity,
  ef_construction = expansion_add, ef_search = expansion_search); a query asks for distances
  and metadata, and, as a second figure, for ids only.
- Each side also runs the queries with a filter on ``team`` (a fifth of the chunks pass).

The sides take turns (Cauce's pass over all queries, then chromadb's, ``--rounds`` times); every
query is timed on its own, one at a time; a figure is the median over the pooled samples. The
targets: Cauce's top-10 p50 at most 2 ms with recall@10 >= 0.95, and at least 5x faster per
query (p50) than chromadb. ``--sweep`` also measures Cauce's recall and p50 for other
``expansion_search`` values on the same graph (how the default was chosen).

Example::

    python benchmarks/retrieval_vs_chromadb.py --json .bench/retrieval.json     # full, minutes
    python benchmarks/retrieval_vs_chromadb.py --quick --cauce-only            # smoke test
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("retrieval_chromadb_worker.py")
BENCH = REPO / ".bench"
DEFAULT_VENV = BENCH / "chromadb-venv"
DATA_ROOT = BENCH / "retrieval"
CHROMADB_REQUIREMENTS = ("chromadb==1.5.9", "numpy")
CHROMADB_READY = "import chromadb, numpy; assert chromadb.__version__ == '1.5.9'"
MODEL_ID = "bench-vectors@1"
DIMS = 384
FULL = {"chunks": 100_000, "queries": 1_000, "rounds": 3}
QUICK = {"chunks": 20_000, "queries": 200, "rounds": 1}
SEED = 17
P50_TARGET_MS = 2.0
RECALL_TARGET = 0.95
RATIO_TARGET = 5.0
FILTER = {"team": "t2"}
SWEEP = (16, 32, 64, 128, 256)


# -- the data ---------------------------------------------------------------------------------


def generate(n: int, queries: int, seed: int) -> tuple[Any, Any]:
    """``n`` chunk vectors and ``queries`` query vectors, float32, normalised (see the module
    docstring for their shape)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((DIMS, DIMS)))
    basis = basis.astype(np.float32)
    scale = ((1.0 + np.arange(DIMS)) ** -0.5).astype(np.float32)

    def draw(count: int, spread: float) -> Any:
        return (rng.standard_normal((count, DIMS), dtype=np.float32) * scale * spread) @ basis.T

    common = 0.5 * draw(1, 1.0)[0]
    topics = common + draw(200, 1.0)
    subtopics = np.repeat(topics, 10, axis=0) + draw(2000, 0.6)
    weights = 1.0 / np.arange(1, 2001) ** 0.7
    rng.shuffle(weights)
    labels = rng.choice(2000, n + queries, p=weights / weights.sum())
    points = np.empty((n + queries, DIMS), dtype=np.float32)
    for start in range(0, n + queries, 20_000):
        stop = min(start + 20_000, n + queries)
        points[start:stop] = subtopics[labels[start:stop]] + draw(stop - start, 0.7)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points[:n], points[n:]


def exact_top(vectors: Any, queries: Any, k: int, rows: Any = None) -> Any:
    """The rows of each query's ``k`` most similar vectors (brute force), best first."""
    import numpy as np

    pool = vectors if rows is None else vectors[rows]
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        sims = queries[start : start + 100] @ pool.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        best = np.take_along_axis(top, order, axis=1)
        out[start : start + 100] = best if rows is None else rows[best]
    return out


def teams(n: int) -> list[dict[str, str]]:
    """Each chunk's metadata: ``team`` t0..t4 in turn."""
    return [{"team": f"t{i % 5}"} for i in range(n)]


def ensure_data(n: int, queries: int, seed: int) -> Path:
    """The folder holding vectors, queries, metadata and ground truth, generated if missing."""
    import numpy as np

    folder = DATA_ROOT / f"n{n}-q{queries}-seed{seed}"
    if (folder / "truth.npy").exists():
        return folder
    note(f"generating {n:,} vectors and {queries:,} queries x {DIMS} into {folder}")
    started = time.perf_counter()
    vectors, query_vectors = generate(n, queries, seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", vectors)
    np.save(folder / "queries.npy", query_vectors)
    (folder / "metadata.json").write_text(json.dumps(teams(n)))
    passing = np.array([i for i in range(n) if i % 5 == int(FILTER["team"][1:])])
    np.save(folder / "truth_filtered.npy", exact_top(vectors, query_vectors, 10, passing))
    np.save(folder / "truth.npy", exact_top(vectors, query_vectors, 10))
    note(f"generated (with exact answers) in {time.perf_counter() - started:.1f} s")
    return folder


def data_shape(folder: Path) -> dict[str, float]:
    """How the vectors look: cosine of random pairs and of each query's nearest chunk."""
    import numpy as np

    vectors, queries = np.load(folder / "vectors.npy"), np.load(folder / "queries.npy")
    truth = np.load(folder / "truth.npy")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(vectors), (2, 5000))
    return {
        "random_pair_cosine_mean": float(np.mean(np.sum(vectors[a] * vectors[b], axis=1))),
        "query_top1_cosine_mean": float(np.mean(np.sum(queries * vectors[truth[:, 0]], axis=1))),
        "query_top10_cosine_mean": float(np.mean(np.sum(queries * vectors[truth[:, 9]], axis=1))),
    }


# -- Cauce ------------------------------------------------------------------------------------


def cauce_index(folder: Path) -> tuple[Any, float | None]:
    """Cauce's index over the data: loaded if a previous run saved it, else built and saved."""
    import numpy as np

    from cauce.genai.indexes import Chunk, HnswSettings, SearchIndex

    settings = "-".join(str(v) for v in HnswSettings().to_dict().values())
    path = folder / f"cauce-{settings}.index"  # rebuilt when the default settings change
    if path.exists():
        return SearchIndex.load(path), None
    vectors = np.load(folder / "vectors.npy")
    chunks = [
        Chunk(
            id=f"c{i}",
            document_id=f"d{i // 4}",
            position=i % 4,
            text="",
            sha256=hashlib.sha256(b"c%d" % i).hexdigest(),
            start=0,
            end=0,
            metadata=meta,
        )
        for i, meta in enumerate(teams(len(vectors)))
    ]
    note(f"building Cauce's index over {len(chunks):,} vectors")
    started = time.perf_counter()
    index = SearchIndex(chunks, vectors, MODEL_ID)
    build_s = time.perf_counter() - started
    index.save(path)
    return index, build_s


def cauce_pass(index: Any, queries: Any, where: Any = None) -> tuple[list[float], list[list[str]]]:
    """Per-query seconds and the chunk ids found."""
    samples, ids = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search_vector(query, 10, model_id=MODEL_ID, where=where)
        samples.append(time.perf_counter() - started)
        ids.append([h.chunk_id for h in hits])
    return samples, ids


def recall(found: list[list[str]], truth: Any) -> float:
    """Mean share of the exact top-10 found."""
    hits = sum(
        len({f"c{r}" for r in row} & set(ids)) for ids, row in zip(found, truth, strict=True)
    )
    return hits / truth.size


def sweep(index: Any, queries: Any, truth: Any) -> list[dict[str, float]]:
    """Recall@10 and p50 for other expansion_search values on the same graph."""
    graph = index._graph  # the benchmark's only reach inside: ef is a setting of the graph
    default = graph.expansion_search
    rows = []
    try:
        for ef in SWEEP:
            graph.expansion_search = ef
            cauce_pass(index, queries[:100])
            samples, ids = cauce_pass(index, queries)
            rows.append(
                {
                    "expansion_search": ef,
                    "recall": recall(ids, truth),
                    "p50_ms": 1000 * statistics.median(samples),
                }
            )
    finally:
        graph.expansion_search = default
    return rows


# -- chromadb ---------------------------------------------------------------------------------


class ChromaWorker:
    """The chromadb worker in its own process and venv, one pass over the queries per turn."""

    def __init__(self, python: Path, folder: Path, rounds: int, hnsw: dict[str, Any]) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="retrieval-chromadb-", dir=BENCH)
        self.out = Path(self.tmp.name) / "result.json"
        self.left = rounds
        cmd = [str(python), str(WORKER), "--data", str(folder), "--out", str(self.out)]
        cmd += ["--store", str(folder / "chromadb"), "--filter", json.dumps(FILTER)]
        cmd += ["--hnsw", json.dumps(hnsw)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
        env["ANONYMIZED_TELEMETRY"] = "False"
        note("chromadb: loading or building its collection")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self._expect("ready")

    def turn(self) -> None:
        """One pass over the queries (nothing once the rounds are done)."""
        if self.left > 0:
            self.left -= 1
            assert self.proc.stdin is not None
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self._expect("done")

    def result(self) -> dict[str, Any]:
        """The worker's figures."""
        while self.left > 0:
            self.turn()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait()
        try:
            if code != 0:
                raise SystemExit(f"the chromadb side failed (exit {code})")
            result: dict[str, Any] = json.loads(self.out.read_text())
        finally:
            self.tmp.cleanup()
        return result

    def _expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == word:
                return
        self.proc.kill()
        raise SystemExit(f"the chromadb side failed before saying {word!r} (stderr above)")


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both sides on the same data; every sample and figure."""
    import numpy as np

    sizes = dict(QUICK if args.quick else FULL)
    for key in ("chunks", "queries", "rounds"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    folder = ensure_data(sizes["chunks"], sizes["queries"], SEED)
    queries = np.load(folder / "queries.npy")
    truth, truth_filtered = np.load(folder / "truth.npy"), np.load(folder / "truth_filtered.npy")
    load_before = load_average()

    index, build_s = cauce_index(folder)
    cauce_pass(index, queries[:100])  # warm-up
    worker = None
    if not args.cauce_only:
        python = Path(args.chromadb_python) if args.chromadb_python else None
        python = python or ensure_venv(Path(args.venv), CHROMADB_REQUIREMENTS, CHROMADB_READY)
        worker = ChromaWorker(python, folder, sizes["rounds"], index.hnsw.to_dict())

    mine: dict[str, Any] = {"samples_s": [], "filtered_samples_s": [], "ids": None}
    for round_ in range(sizes["rounds"]):
        note(f"round {round_ + 1}/{sizes['rounds']}: Cauce")
        samples, ids = cauce_pass(index, queries)
        mine["samples_s"].extend(samples)
        mine["ids"] = mine["ids"] or ids
        samples, filtered_ids = cauce_pass(index, queries, FILTER)
        mine["filtered_samples_s"].extend(samples)
        mine.setdefault("filtered_ids", filtered_ids)
        if worker is not None:
            note(f"round {round_ + 1}/{sizes['rounds']}: chromadb")
            worker.turn()
    theirs = worker.result() if worker is not None else None

    import usearch

    cauce_side = {
        "version": _cauce_version(),
        "usearch_version": usearch.__version__,
        "hnsw": index.hnsw.to_dict(),
        "build_s": build_s,
        "p50_ms": 1000 * statistics.median(mine["samples_s"]),
        "p95_ms": 1000 * _quantile(mine["samples_s"], 0.95),
        "mean_ms": 1000 * statistics.fmean(mine["samples_s"]),
        "recall": recall(mine["ids"], truth),
        "filtered_p50_ms": 1000 * statistics.median(mine["filtered_samples_s"]),
        "filtered_recall": recall(mine["filtered_ids"], truth_filtered),
        "samples_s": mine["samples_s"],
    }
    chroma_side = None
    if theirs is not None:
        chroma_side = {
            "version": theirs["chromadb_version"],
            "hnsw": theirs["hnsw"],
            "build_s": theirs["build_s"],
            "count": theirs["count"],
            "p50_ms": 1000 * statistics.median(theirs["samples_s"]["full"]),
            "p95_ms": 1000 * _quantile(theirs["samples_s"]["full"], 0.95),
            "mean_ms": 1000 * statistics.fmean(theirs["samples_s"]["full"]),
            "ids_only_p50_ms": 1000 * statistics.median(theirs["samples_s"]["ids"]),
            "recall": recall(theirs["ids"]["full"], truth),
            "filtered_p50_ms": 1000 * statistics.median(theirs["filtered_samples_s"]),
            "filtered_recall": recall(theirs["ids"]["filtered"], truth_filtered),
            "samples_s": theirs["samples_s"],
        }
    ratio = chroma_side["p50_ms"] / cauce_side["p50_ms"] if chroma_side else None
    result = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(load_before=load_before, load_after=load_average()),
        "sizes": sizes,
        "dims": DIMS,
        "seed": SEED,
        "data_shape": data_shape(folder),
        "cauce": cauce_side,
        "chromadb": chroma_side,
        "ratio": ratio,
        "ratio_ids_only": (
            chroma_side["ids_only_p50_ms"] / cauce_side["p50_ms"] if chroma_side else None
        ),
        "p50_target_met": cauce_side["p50_ms"] <= P50_TARGET_MS,
        "recall_target_met": cauce_side["recall"] >= RECALL_TARGET,
        "ratio_target_met": None if ratio is None else ratio >= RATIO_TARGET,
        "sweep": sweep(index, queries, truth) if args.sweep else None,
    }
    return result


def _cauce_version() -> str:
    import cauce

    return cauce.__version__


def _quantile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1]


def report(result: dict[str, Any]) -> str:
    """The table and the notes."""
    c, ch = result["cauce"], result["chromadb"]
    sizes = result["sizes"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} ms"

    def verdict(met: bool | None) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[met]

    ratio = result["ratio"]
    rows = [
        ["figure", "Cauce", "chromadb", "chromadb/Cauce", "target", "result"],
        [
            "top-10 p50 (distances + metadata)",
            ms(c["p50_ms"]),
            ms(ch and ch["p50_ms"]),
            "-" if ratio is None else f"{ratio:.1f}x",
            f">= {RATIO_TARGET:g}x; Cauce <= {P50_TARGET_MS:g} ms",
            f"{verdict(result['ratio_target_met'])}; {verdict(result['p50_target_met'])}",
        ],
        [
            "top-10 p50, chromadb ids only",
            ms(c["p50_ms"]),
            ms(ch and ch["ids_only_p50_ms"]),
            "-" if result["ratio_ids_only"] is None else f"{result['ratio_ids_only']:.1f}x",
            "-",
            "-",
        ],
        ["top-10 p95", ms(c["p95_ms"]), ms(ch and ch["p95_ms"]), "-", "-", "-"],
        [
            "recall@10 vs exact",
            f"{c['recall']:.4f}",
            "-" if ch is None else f"{ch['recall']:.4f}",
            "-",
            f">= {RECALL_TARGET}",
            verdict(result["recall_target_met"]),
        ],
        [
            f"filtered {json.dumps(FILTER)} p50",
            ms(c["filtered_p50_ms"]),
            ms(ch and ch["filtered_p50_ms"]),
            "-" if ch is None else f"{ch['filtered_p50_ms'] / c['filtered_p50_ms']:.1f}x",
            "-",
            "-",
        ],
        [
            "filtered recall@10",
            f"{c['filtered_recall']:.4f}",
            "-" if ch is None else f"{ch['filtered_recall']:.4f}",
            "-",
            "-",
            "-",
        ],
        [
            "build (s; 'loaded': a previous run's)",
            "loaded" if c["build_s"] is None else f"{c['build_s']:.1f}",
            "-" if ch is None else "loaded" if ch["build_s"] is None else f"{ch['build_s']:.1f}",
            "-",
            "-",
            "-",
        ],
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    shape = result["data_shape"]
    m = result["machine"]
    head = (
        f"{sizes['chunks']:,} chunks x {result['dims']} dims, {sizes['queries']:,} queries x "
        f"{sizes['rounds']} round(s); Cauce {c['version']} (usearch {c['usearch_version']}, "
        f"HNSW {c['hnsw']})"
        + (f" vs chromadb {ch['version']} (PersistentClient, {ch['hnsw']})" if ch else "")
        + f"\n{m['cpu_count']} CPUs ({m['cpu']}), Python {m['python']}, load "
        f"{m['load_before']} -> {m['load_after']}\n"
        f"data: random pairs cosine {shape['random_pair_cosine_mean']:.3f}, query to its "
        f"nearest chunk {shape['query_top1_cosine_mean']:.3f}, to its 10th "
        f"{shape['query_top10_cosine_mean']:.3f}"
    )
    text = head + "\n" + "\n".join(lines)
    if result["sweep"]:
        text += "\nexpansion_search sweep (same graph): " + "; ".join(
            f"ef {r['expansion_search']}: recall {r['recall']:.4f}, p50 {r['p50_ms']:.3f} ms"
            for r in result["sweep"]
        )
    return text


def main() -> None:
    """Parse the options, run, print, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 chunks, 200 queries, 1 round")
    parser.add_argument("--chunks", type=int)
    parser.add_argument("--queries", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--cauce-only", action="store_true", help="skip chromadb")
    parser.add_argument("--sweep", action="store_true", help="also sweep expansion_search")
    parser.add_argument("--venv", default=str(DEFAULT_VENV), help="chromadb's venv")
    parser.add_argument("--chromadb-python", help="an interpreter that already has chromadb")
    parser.add_argument("--json", help="write every sample and figure here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    result = run(args)
    print(report(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    missed = [
        name
        for name in ("p50_target_met", "recall_target_met", "ratio_target_met")
        if result[name] is False
    ]
    if args.strict and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
