"""Search: HNSW recall against exact search, BM25, reciprocal-rank fusion, metadata filters,
saving and loading, and the refusal of a query from another embedding model."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from indexes_helpers import clustered, exact_top

from cauce.errors import InvalidInput, NotFound
from cauce.genai.indexes import (
    RRF_K,
    Chunk,
    EmbeddingModelMismatch,
    MiniLMEmbedder,
    SearchIndex,
    build_index,
    read_rows,
)
from cauce.genai.indexes import TokenChunker as Chunker
from cauce.genai.indexes import search as search_module

MODEL = "test-vectors@1"
N = 3000


def _chunks(n: int) -> list[Chunk]:
    """Chunks with metadata to filter on: ``team`` (5 values), ``rare`` (every 100th)."""
    chunks = []
    for i in range(n):
        text = f"chunk {i} about topic{i % 7}"
        chunks.append(
            Chunk(
                id=f"c{i}",
                document_id=f"doc{i // 10}",
                position=i % 10,
                text=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                start=0,
                end=len(text),
                metadata={"team": f"t{i % 5}", "rare": i % 100 == 0, "lang": "en"},
            )
        )
    return chunks


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(N, seed=3)


@pytest.fixture(scope="module")
def index(vectors: np.ndarray) -> SearchIndex:
    return SearchIndex(_chunks(N), vectors, MODEL)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    return embedder


def _queries(count: int, seed: int = 9) -> np.ndarray:
    """Queries near the indexed vectors (as questions lie near the passages answering them)."""
    rng = np.random.default_rng(seed)
    near = clustered(N, seed=3)[rng.choice(N, count, replace=False)]
    return (near + 0.05 * rng.standard_normal(near.shape)).astype(np.float32)


def test_hnsw_recall_at_10_against_exact_search(index: SearchIndex, vectors: np.ndarray) -> None:
    found = 0
    for query in _queries(100, seed=4):
        hits = index.search_vector(query, 10, model_id=MODEL)
        truth = {f"c{row}" for row in exact_top(vectors, query, 10)}
        found += len(truth & {h.chunk_id for h in hits})
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert hits[0].vector_rank == 1 and hits[0].bm25_score is None
    assert found / 1000 >= 0.95


def test_a_selective_filter_gives_the_exact_answer_over_the_matching_chunks(
    index: SearchIndex, vectors: np.ndarray
) -> None:
    rare = np.array([i for i in range(N) if i % 100 == 0])
    for query in _queries(5):
        hits = index.search_vector(query, 10, model_id=MODEL, where={"rare": True})
        expected = [f"c{rare[r]}" for r in exact_top(vectors[rare], query, 10)]
        assert [h.chunk_id for h in hits] == expected
        assert all(h.metadata["rare"] is True for h in hits)
    both = index.search_vector(
        _queries(1)[0], 50, model_id=MODEL, where={"team": {"in": ["t1", "t3"]}, "rare": False}
    )
    assert len(both) == 50
    assert all(h.metadata["team"] in ("t1", "t3") and not h.metadata["rare"] for h in both)
    by_document = index.search_vector(
        _queries(1)[0], 10, model_id=MODEL, where={"document_id": "doc7"}
    )
    assert sorted(h.chunk_id for h in by_document) == [f"c{i}" for i in range(70, 80)]
    assert index.search_vector(_queries(1)[0], 10, model_id=MODEL, where={"team": "t9"}) == []
    assert index.search_vector(_queries(1)[0], 10, model_id=MODEL, where={"owner": "x"}) == []


def test_a_broad_filter_oversamples_the_graph_and_keeps_recall(
    index: SearchIndex, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "EXACT_LIMIT", 100)  # the graph path, at this size
    team = np.array([i for i in range(N) if i % 5 == 2])
    found = 0
    for query in _queries(30, seed=11):
        hits = index.search_vector(query, 10, model_id=MODEL, where={"team": "t2"})
        assert len(hits) == 10 and all(h.metadata["team"] == "t2" for h in hits)
        truth = {f"c{team[r]}" for r in exact_top(vectors[team], query, 10)}
        found += len(truth & {h.chunk_id for h in hits})
    assert found / 300 >= 0.95
    # 1% of the chunks pass: the graph is searched deeper until ten are found
    hits = index.search_vector(_queries(1)[0], 10, model_id=MODEL, where={"rare": True})
    assert len(hits) == 10 and all(h.metadata["rare"] for h in hits)


def test_filters_that_are_not_conditions_are_refused(index: SearchIndex) -> None:
    query = _queries(1)[0]
    for where in ({"team": {"eq": "t1"}}, {"team": {"in": "t1"}}):
        with pytest.raises(InvalidInput, match="not a condition"):
            index.search_vector(query, 10, model_id=MODEL, where=where)
    with pytest.raises(InvalidInput, match="k must be at least 1"):
        index.search_vector(query, 0, model_id=MODEL)
    with pytest.raises(InvalidInput, match="383 dimensions"):
        index.search_vector(query[:383], 10, model_id=MODEL)


CORPUS = [
    ("rollback", "To roll back a deployment, move the traffic back to the previous version."),
    ("canary", "A canary rollout sends ten percent of the traffic to the new deployment."),
    ("drift", "Drift monitors compare current data with the reference profile."),
    ("gate", "A quality gate blocks a model version whose metrics are below the bar."),
    ("psi", "PSI, the population stability index, measures a shift between two histograms."),
    ("cake", "Bake the cake for forty minutes at one hundred and eighty degrees."),
    ("alert", "An alert fires when a monitor's metric crosses its threshold."),
    ("lineage", "Lineage links each dataset version to the models trained on it."),
]


@pytest.fixture(scope="module")
def text_index(minilm: MiniLMEmbedder) -> SearchIndex:
    parsed = read_rows(CORPUS)
    return build_index(parsed.documents, Chunker(), minilm).index


def test_hybrid_search_fuses_both_rankings_by_reciprocal_rank(
    text_index: SearchIndex, minilm: MiniLMEmbedder
) -> None:
    query = "how do I move traffic back after a bad rollout"
    dense = text_index.search(query, minilm, k=8, mode="vector")
    sparse = text_index.search(query, minilm, k=8, mode="text")
    hybrid = text_index.search(query, minilm, k=8)

    expected: dict[str, float] = {}
    for ranking in (dense, sparse):
        for rank, hit in enumerate(ranking, start=1):
            expected[hit.document_id] = expected.get(hit.document_id, 0.0) + 1 / (RRF_K + rank)
    assert [h.document_id for h in hybrid] == sorted(expected, key=lambda d: -expected[d])[:8]
    for hit in hybrid:
        assert hit.score == pytest.approx(expected[hit.document_id])
        if hit.vector_rank is not None:
            assert dense[hit.vector_rank - 1].document_id == hit.document_id
            assert hit.vector_score == pytest.approx(dense[hit.vector_rank - 1].score)
        if hit.bm25_rank is not None:
            assert sparse[hit.bm25_rank - 1].document_id == hit.document_id
    assert hybrid[0].document_id == "rollback"
    assert hybrid[0].vector_rank is not None and hybrid[0].bm25_rank is not None
    # BM25 returns only chunks that share a term with the query
    assert {h.document_id for h in sparse} <= {"rollback", "canary"}
    assert "cake" not in {h.document_id for h in sparse}
    # a larger rrf_k flattens the weight of the top ranks; the fused scores change with it
    flat = text_index.search(query, minilm, k=3, rrf_k=1000)
    assert flat[0].score < hybrid[0].score
    with pytest.raises(InvalidInput, match="unknown search mode"):
        text_index.search(query, minilm, mode="keyword")


def test_hybrid_search_honours_filters_on_both_sides(
    text_index: SearchIndex, minilm: MiniLMEmbedder
) -> None:
    where = {"path": {"in": ["drift", "psi", "cake"]}}
    hits = text_index.search("traffic rollback shift", minilm, k=5, where=where)
    assert {h.document_id for h in hits} == {"drift", "psi", "cake"}
    assert text_index.search("psi", minilm, k=2, mode="text", where=where)[0].document_id == "psi"


def test_a_query_from_another_embedding_model_is_refused(
    index: SearchIndex, text_index: SearchIndex, minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(EmbeddingModelMismatch) as caught:
        index.search("anything", minilm)
    assert isinstance(caught.value, InvalidInput)
    assert MODEL in caught.value.message and minilm.model_id in caught.value.message
    with pytest.raises(EmbeddingModelMismatch):
        text_index.search_vector(np.ones(384, np.float32), model_id="text-embedding-3-small")
    saved = SearchIndex.load(text_index.save(tmp_path / "text.cauce"))
    with pytest.raises(EmbeddingModelMismatch):
        saved.search_vector(np.ones(384, np.float32), model_id="other@2")
    assert saved.search("PSI", minilm, k=1, mode="text")[0].document_id == "psi"


def test_an_index_saves_to_one_file_and_loads_with_the_same_answers(
    index: SearchIndex, tmp_path: Path
) -> None:
    path = index.save(tmp_path / "sub" / "v1.cauce")
    assert sorted(p.name for p in path.parent.iterdir()) == ["v1.cauce"]  # no temporary file left
    loaded = SearchIndex.load(path)
    assert loaded.model_id == MODEL and len(loaded) == N and loaded.hnsw == index.hnsw
    assert [c.to_dict() for c in loaded.chunks] == [c.to_dict() for c in index.chunks]
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    for query in _queries(5):
        assert loaded.search_vector(query, 10, model_id=MODEL) == index.search_vector(
            query, 10, model_id=MODEL
        )
    # saving again replaces the file whole
    index.save(path)
    assert SearchIndex.load(path).chunks[5].id == "c5"

    with pytest.raises(NotFound):
        SearchIndex.load(tmp_path / "missing.cauce")
    (tmp_path / "junk.cauce").write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="not a readable index file"):
        SearchIndex.load(tmp_path / "junk.cauce")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("manifest.json", '{"format": "something-else"}')
    with pytest.raises(InvalidInput, match="not a Cauce index file"):
        SearchIndex.load(tmp_path / "other.zip")


def test_an_empty_index_answers_nothing(tmp_path: Path) -> None:
    empty = SearchIndex([], np.zeros((0, 384), np.float32), MODEL)
    assert empty.search_vector(np.ones(384, np.float32), 5, model_id=MODEL) == []
    assert empty.search_text("anything") == []
    assert len(SearchIndex.load(empty.save(tmp_path / "empty.cauce"))) == 0
    # chunks whose texts hold no term (stop words only): vectors still answer, BM25 nothing
    termless = SearchIndex(
        [Chunk(c.id, c.document_id, 0, "the of a", c.sha256, 0, 8) for c in _chunks(3)],
        clustered(3),
        MODEL,
    )
    loaded = SearchIndex.load(termless.save(tmp_path / "termless.cauce"))
    for index in (termless, loaded):
        assert index.search_text("the") == []
        assert len(index.search_vector(clustered(1)[0], 2, model_id=MODEL)) == 2


def test_vectors_of_any_length_are_searched_by_cosine() -> None:
    vectors = clustered(500, seed=5)
    scales = np.random.default_rng(6).uniform(0.1, 20.0, (500, 1)).astype(np.float32)
    scaled = SearchIndex(_chunks(500), vectors * scales, MODEL)
    np.testing.assert_allclose(scaled.vectors, vectors, atol=1e-6)
    found = 0
    rng = np.random.default_rng(7)
    for row in rng.choice(500, 20, replace=False):
        query = vectors[row] + 0.05 * rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        hits = scaled.search_vector(query, 10, model_id=MODEL)
        longer = scaled.search_vector(7 * query, 10, model_id=MODEL)
        assert [h.chunk_id for h in longer] == [h.chunk_id for h in hits]
        assert [h.score for h in longer] == pytest.approx([h.score for h in hits], abs=1e-6)
        found += len({f"c{r}" for r in exact_top(vectors, query, 10)} & {h.chunk_id for h in hits})
        np.testing.assert_allclose(
            [h.score for h in hits],
            [float(vectors[int(h.chunk_id[1:])] @ query) for h in hits],
            atol=1e-6,
        )
    assert found / 200 >= 0.95
    with pytest.raises(InvalidInput, match="zero"):
        scaled.search_vector(np.zeros(384, np.float32), model_id=MODEL)


def test_chunk_ids_must_be_unique_and_match_the_vectors() -> None:
    chunks = _chunks(3)
    with pytest.raises(InvalidInput, match="unique"):
        SearchIndex([*chunks, chunks[0]], clustered(4), MODEL)
    with pytest.raises(InvalidInput, match="3 chunks need"):
        SearchIndex(chunks, clustered(4), MODEL)
