"""Embeddings from the packaged all-MiniLM-L6-v2, and the cache by (model id, text hash)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from indexes_helpers import RecordingEmbedder

from cauce.genai.indexes import Embedder, MemoryCache, MiniLMEmbedder, SqliteCache, embed_texts
from cauce.genai.indexes.embed import text_sha256


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    """The real model, loaded once for the module (a few seconds)."""
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    return embedder


def test_minilm_gives_normalised_float32_vectors_that_rank_by_meaning(
    minilm: MiniLMEmbedder,
) -> None:
    assert isinstance(minilm, Embedder)
    assert minilm.model_id.startswith("sentence-transformers/all-MiniLM-L6-v2@")
    texts = [
        "How do I roll back a failed deployment?",
        "Undo a broken release and restore the previous model version.",
        "The recipe needs two cups of flour and an egg.",
    ]
    vectors = minilm.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    # the same text gives the same vector, alone or in a batch
    np.testing.assert_allclose(minilm.embed([texts[2]])[0], vectors[2], atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_embed_texts_uses_the_cache_and_embeds_each_distinct_text_once(
    minilm: MiniLMEmbedder,
) -> None:
    recorder = RecordingEmbedder(minilm)
    cache = MemoryCache()
    texts = ["alpha gates", "beta drift", "alpha gates"]
    first = embed_texts(texts, recorder, cache)
    assert recorder.texts == ["alpha gates", "beta drift"]
    assert (first.embedded, first.cached) == (2, 0)
    np.testing.assert_array_equal(first.vectors[0], first.vectors[2])

    second = embed_texts(["beta drift", "gamma lineage"], recorder, cache)
    assert recorder.texts[2:] == ["gamma lineage"]
    assert (second.embedded, second.cached) == (1, 1)
    np.testing.assert_array_equal(second.vectors[0], first.vectors[1])
    assert len(cache) == 3


def test_the_sqlite_cache_keeps_vectors_across_processes_and_separates_models(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    path = tmp_path / "cache" / "embeddings.db"
    cache = SqliteCache(path)
    vectors = embed_texts(["one", "two"], minilm, cache).vectors
    cache.close()

    reopened = SqliteCache(path)
    keys = [text_sha256("one"), text_sha256("two"), text_sha256("three")]
    found = reopened.get_many(minilm.model_id, keys)
    assert sorted(found) == sorted(keys[:2])
    np.testing.assert_array_equal(found[keys[0]], vectors[0])
    assert reopened.get_many("another-model@1", keys) == {}

    recorder = RecordingEmbedder(minilm)
    again = embed_texts(["two", "one"], recorder, reopened)
    assert recorder.texts == [] and again.cached == 2
    np.testing.assert_array_equal(again.vectors, vectors[::-1])
    many = [f"text {i}" for i in range(1200)]  # more hashes than one SELECT takes
    reopened.put_many(minilm.model_id, {text_sha256(t): vectors[0] for t in many})
    assert len(reopened.get_many(minilm.model_id, [text_sha256(t) for t in many])) == 1200
    reopened.close()


def test_importing_the_indexes_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, cauce.genai.indexes; "
        "print(*sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'torch', 'sentence_transformers', 'transformers', 'usearch', 'bm25s', "
        "'pypdf', 'tokenizers', 'fsspec'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
