"""Index build profile: where a full build's time goes, and what a refresh costs.

The corpus (default 600 documents) is generated from a seed and written once under
``.bench/index-build/`` (gitignored): 70% Markdown (a title and 2 to 4 sections), 20% plain
text, 10% HTML; 120 to 280 words each, drawn with Zipf frequencies from 5,000 whole-word entries
of the MiniLM tokenizer's own vocabulary (so a word is one wordpiece, as most English words
are).

- **Full build**, end to end, in this process, with the model already loaded (its load time is
  printed apart): ``read_folder`` (parse and hash every file) → ``build_index`` with
  ``MarkdownChunker()`` (200 tokens, overlap 40), ``MiniLMEmbedder()`` and a fresh
  ``SqliteCache`` (chunk, embed, cache writes, HNSW graph, BM25) → ``index.save``. The time
  inside the model (``MiniLMEmbedder.embed``) is measured by a wrapper around it; the rest is
  Cauce's overhead. Target: >= 90% of the build in the model.
- **Refresh** after 1% of the documents changed (each rewritten with new text; a different 1%
  each round, starting from the same full build): ``read_folder`` of the whole corpus →
  ``SearchIndex.load`` of the previous version's file → ``refresh_index`` (same cache) →
  ``index.save``. Target: at most 5% of the full build's time (median over ``--rounds``).

Example::

    python benchmarks/index_build.py --json .bench/index-build.json    # a few minutes on 2 cores
    python benchmarks/index_build.py --quick                           # 60 documents, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peers import load_average, machine, note

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
DATA_ROOT = BENCH / "index-build"
SEED = 23
FULL_DOCS = 600
QUICK_DOCS = 60
CHANGED_SHARE = 0.01
SHARE_TARGET = 0.90
REFRESH_TARGET = 0.05
VOCABULARY = 5_000


# -- the corpus -------------------------------------------------------------------------------


def vocabulary(size: int) -> list[str]:
    """``size`` whole words of the MiniLM tokenizer's vocabulary (letters only, 3+ long)."""
    from cauce.genai.indexes.embed import minilm_dir

    words = []
    for line in (minilm_dir() / "vocab.txt").read_text().splitlines():
        if line.isascii() and line.isalpha() and len(line) >= 3 and not line.startswith("["):
            words.append(line)
    # the vocabulary lists frequent words first: the first `size` are everyday English
    return words[:size]


class Writer:
    """Seeded text made of the vocabulary with Zipf frequencies."""

    def __init__(self, words: Sequence[str], seed: int) -> None:
        self.words = list(words)
        self.rng = random.Random(seed)
        self.weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(self.words))]

    def phrase(self, count: int) -> list[str]:
        """``count`` words."""
        return self.rng.choices(self.words, weights=self.weights, k=count)

    def sentence(self) -> str:
        """A capitalised sentence of 8 to 20 words."""
        words = self.phrase(self.rng.randint(8, 20))
        return " ".join(words).capitalize() + "."

    def paragraph(self, words: int) -> str:
        """Sentences until about ``words`` words."""
        out: list[str] = []
        while sum(s.count(" ") + 1 for s in out) < words:
            out.append(self.sentence())
        return " ".join(out)

    def document(self, kind: str) -> str:
        """One document of ``kind`` md, txt or html, 120 to 280 words."""
        total = self.rng.randint(120, 280)
        title = " ".join(self.phrase(3)).title()
        if kind == "txt":
            return self.paragraph(total) + "\n"
        sections = self.rng.randint(2, 4)
        parts = [(" ".join(self.phrase(2)).title(), self.paragraph(total // sections))]
        parts += [
            (" ".join(self.phrase(2)).title(), self.paragraph(total // sections))
            for _ in range(sections - 1)
        ]
        if kind == "md":
            body = "\n\n".join(f"## {head}\n\n{text}" for head, text in parts)
            return f"# {title}\n\n{body}\n"
        body = "".join(f"<h2>{head}</h2><p>{text}</p>" for head, text in parts)
        return (
            f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
        )


def kind_of(i: int) -> str:
    """Documents 0-6 of every 10 are Markdown, 7-8 text, 9 HTML."""
    return "md" if i % 10 < 7 else "txt" if i % 10 < 9 else "html"


def ensure_corpus(count: int, seed: int) -> Path:
    """The pristine corpus folder, generated if missing."""
    folder = DATA_ROOT / f"corpus-{count}-seed{seed}"
    if folder.exists():
        return folder
    note(f"writing {count} documents into {folder}")
    writer = Writer(vocabulary(VOCABULARY), seed)
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for i in range(count):
        kind = kind_of(i)
        path = tmp / f"section-{i % 7}" / f"doc-{i:05d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(writer.document(kind))
    tmp.rename(folder)
    return folder


# -- timing -----------------------------------------------------------------------------------


class TimedEmbedder:
    """The real embedder, adding up the seconds spent inside it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.seconds = 0.0
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> Any:
        """The inner embedder's vectors, timed."""
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)


def full_build(corpus: Path, work: Path, embedder: Any) -> dict[str, Any]:
    """Parse, chunk, embed, index and save the whole corpus; the seconds of each part."""
    from cauce.genai.indexes import MarkdownChunker, SqliteCache, build_index, read_folder

    timed = TimedEmbedder(embedder)
    started = time.perf_counter()
    parsed = read_folder(corpus)
    parsed_at = time.perf_counter()
    cache = SqliteCache(work / "cache.db")
    version = build_index(parsed.documents, MarkdownChunker(), timed, cache)
    built_at = time.perf_counter()
    version.index.save(work / "v1.cauce")
    saved_at = time.perf_counter()
    total = saved_at - started
    cache.close()
    return {
        "documents": len(parsed.documents),
        "skipped": len(parsed.skipped),
        "chunks": len(version.index),
        "embedded": version.embedded,
        "total_s": total,
        "model_s": timed.seconds,
        "model_share": timed.seconds / total,
        "parse_s": parsed_at - started,
        "chunk_s": version.seconds["chunk"],
        "embed_stage_s": version.seconds["embed"],
        "cache_and_glue_s": version.seconds["embed"] - timed.seconds,
        "index_s": version.seconds["index"],
        "save_s": saved_at - built_at,
        "version": version.id,
    }


def change_documents(corpus: Path, round_: int, share: float, seed: int) -> list[str]:
    """Rewrite ``share`` of the documents (a different set each round); their ids."""
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    count = max(1, round(share * len(files)))
    rng = random.Random(seed * 1000 + round_)
    chosen = rng.sample(files, count)
    writer = Writer(vocabulary(VOCABULARY), seed * 1000 + round_ + 1)
    for path in chosen:
        path.write_text(writer.document(path.suffix.lstrip(".")))
    return [str(p.relative_to(corpus)) for p in chosen]


def refresh(corpus: Path, work: Path, embedder: Any) -> dict[str, Any]:
    """Parse the corpus, load the previous version, refresh it, save the new one; seconds."""
    from cauce.genai.indexes import (
        MarkdownChunker,
        SearchIndex,
        SqliteCache,
        read_folder,
        refresh_index,
    )

    timed = TimedEmbedder(embedder)
    cache = SqliteCache(work / "cache.db")
    started = time.perf_counter()
    parsed = read_folder(corpus)
    previous = SearchIndex.load(work / "v1.cauce")
    loaded_at = time.perf_counter()
    version = refresh_index(previous, parsed.documents, MarkdownChunker(), timed, cache)
    version.index.save(work / "v2.cauce")
    total = time.perf_counter() - started
    cache.close()
    return {
        "total_s": total,
        "model_s": timed.seconds,
        "parse_and_load_s": loaded_at - started,
        "changes": {k: len(v) for k, v in version.changes.to_dict().items()},
        "reused_chunks": version.reused_chunks,
        "embedded": version.embedded,
        "seconds": version.seconds,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The full build and the refreshes."""
    from cauce.genai.indexes import MiniLMEmbedder

    count = args.documents or (QUICK_DOCS if args.quick else FULL_DOCS)
    pristine = ensure_corpus(count, SEED)
    load_before = load_average()
    started = time.perf_counter()
    embedder = MiniLMEmbedder()
    embedder.embed(["load the model"])
    model_load_s = time.perf_counter() - started

    BENCH.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="index-build-", dir=BENCH) as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        shutil.copytree(pristine, corpus)
        note(f"full build of {count} documents")
        full = full_build(corpus, work, embedder)
        note(
            f"full build: {full['total_s']:.1f} s, {full['model_share']:.1%} in the model; "
            f"{full['chunks']} chunks"
        )
        refreshes = []
        for round_ in range(args.rounds):
            shutil.rmtree(corpus)
            shutil.copytree(pristine, corpus)
            changed = change_documents(corpus, round_, CHANGED_SHARE, SEED)
            result = refresh(corpus, work, embedder)
            result["changed_documents"] = changed
            refreshes.append(result)
            note(f"refresh {round_ + 1}: {result['total_s']:.2f} s, changes {result['changes']}")
    refresh_s = statistics.median(r["total_s"] for r in refreshes)
    import sentence_transformers
    import torch

    import cauce

    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(load_before=load_before, load_after=load_average()),
        "versions": {
            "cauce": cauce.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "sentence_transformers": sentence_transformers.__version__,
            "model": embedder.model_id,
        },
        "documents": count,
        "model_load_s": model_load_s,
        "full": full,
        "refreshes": refreshes,
        "refresh_median_s": refresh_s,
        "refresh_share": refresh_s / full["total_s"],
        "share_target_met": full["model_share"] >= SHARE_TARGET,
        "refresh_target_met": refresh_s / full["total_s"] <= REFRESH_TARGET,
    }


def report(result: dict[str, Any]) -> str:
    """The profile as a table."""
    f = result["full"]
    m = result["machine"]

    def verdict(met: bool) -> str:
        return "PASS" if met else "FAIL"

    rows = [
        ["part of the full build", "seconds", "share"],
        [
            "parse and hash (read_folder)",
            f"{f['parse_s']:.2f}",
            f"{f['parse_s'] / f['total_s']:.1%}",
        ],
        ["chunk (MarkdownChunker)", f"{f['chunk_s']:.2f}", f"{f['chunk_s'] / f['total_s']:.1%}"],
        ["embedding model (MiniLM)", f"{f['model_s']:.2f}", f"{f['model_share']:.1%}"],
        [
            "cache lookups/writes, glue",
            f"{f['cache_and_glue_s']:.2f}",
            f"{f['cache_and_glue_s'] / f['total_s']:.1%}",
        ],
        ["HNSW graph + BM25", f"{f['index_s']:.2f}", f"{f['index_s'] / f['total_s']:.1%}"],
        ["save (one file)", f"{f['save_s']:.2f}", f"{f['save_s'] / f['total_s']:.1%}"],
        ["total", f"{f['total_s']:.2f}", "100%"],
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    refreshes = ", ".join(f"{r['total_s']:.2f}" for r in result["refreshes"])
    last = result["refreshes"][-1]
    return (
        f"{result['documents']} documents -> {f['chunks']} chunks ({f['skipped']} skipped); "
        f"{result['versions']['model']}, torch {result['versions']['torch']} "
        f"({result['versions']['torch_threads']} threads); model load {result['model_load_s']:.1f}"
        f" s (not in the build)\n{m['cpu_count']} CPUs ({m['cpu']}), Python {m['python']}, load "
        f"{m['load_before']} -> {m['load_after']}\n"
        + "\n".join(lines)
        + f"\nshare in the embedding model: {f['model_share']:.1%} (target >= "
        f"{SHARE_TARGET:.0%}): {verdict(result['share_target_met'])}"
        + f"\nrefresh after {CHANGED_SHARE:.0%} changed: {result['refresh_median_s']:.2f} s median"
        f" ({refreshes}) = {result['refresh_share']:.1%} of the full build (target <= "
        f"{REFRESH_TARGET:.0%}): {verdict(result['refresh_target_met'])}"
        + f"\nlast refresh: changes {last['changes']}, {last['reused_chunks']} chunks reused, "
        f"{last['embedded']} embedded ({last['model_s']:.2f} s in the model), parse + load "
        f"{last['parse_and_load_s']:.2f} s, stages {_rounded(last['seconds'])}"
    )


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in seconds.items()}


def main() -> None:
    """Parse the options, run, print, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DOCS} documents")
    parser.add_argument("--documents", type=int, help="corpus size")
    parser.add_argument("--rounds", type=int, default=3, help="refreshes (default 3)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    result = run(args)
    print(report(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.strict and not (result["share_target_met"] and result["refresh_target_met"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
