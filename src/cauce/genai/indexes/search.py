"""Search over an index version's chunks: vectors (usearch HNSW, cosine), BM25 (bm25s) and the
two fused by reciprocal-rank fusion, with metadata filters.

- **Vectors.** Kept normalised, so that the inner product is the cosine. An HNSW graph over
  them in half precision (``f16``), ``connectivity`` 16, ``expansion_add`` 128,
  ``expansion_search`` 32: chosen by measurement (benchmarks/README.md, "Retrieval"): at
  100,000 chunks x 384 dimensions, f16 gave the recall of f32 with a build 2.4x faster and
  searches ~20% faster, while i8 lost recall (0.93); ``expansion_search`` 32 gave recall@10
  0.99 against exact search (16: 0.96, 64: 0.997 at 1.8x the time).
- **BM25.** bm25s (Lucene's variant, k1 1.5, b 0.75) over the chunk text, lower-cased, English
  stop words removed.
- **Hybrid** (the default): each side's best ``candidates`` chunks, fused by reciprocal rank
  fusion, ``score = sum(1 / (rrf_k + rank))`` over the sides that found the chunk, rank from 1.
  ``rrf_k`` defaults to 60, the constant of Cormack, Clarke and Büttcher (SIGIR 2009), which
  damps the weight of the top ranks so that neither side dominates.
- **Filters.** ``where={"path": "faq.md", "lang": {"in": ["en", "es"]}}``: equality, or
  membership with ``{"in": [...]}``, on chunk metadata (and ``document_id``); fields are ANDed.
  When at most :data:`EXACT_LIMIT` chunks pass, the vector side is an exact search over them;
  otherwise the graph is searched for more neighbours than asked (in proportion to how few
  chunks pass) until ``k`` of them pass, falling back to exact search.
- **Model check.** An index remembers the embedding model id it was built with; a query
  embedded by another model is refused with :class:`EmbeddingModelMismatch`.

An index is saved as one file (a zip: manifest, chunks, vectors, HNSW graph, BM25), written to a
temporary file and renamed into place, so a reader never sees half an index.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput, NotFound
from cauce.genai.indexes.chunk import Chunk, canonical_json
from cauce.genai.indexes.embed import Embedder

if TYPE_CHECKING:
    import numpy as np

FORMAT = "cauce-index"
FORMAT_VERSION = 1
RRF_K = 60
EXACT_LIMIT = 10_000  # at most this many chunks pass a filter: exact search over them
MODES = ("hybrid", "vector", "text")


class EmbeddingModelMismatch(InvalidInput):
    """A query embedded by another model than the one the index was built with."""

    code = "embedding-model-mismatch"


@dataclass(frozen=True)
class HnswSettings:
    """The HNSW graph's parameters (usearch's names; the paper's M, efConstruction, ef) and
    the scalar type the graph stores vectors in (``f16``: half the memory of ``f32``, the same
    recall on normalised embeddings; the exact search uses the float32 vectors)."""

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 32
    dtype: str = "f16"

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict."""
        return {
            "connectivity": self.connectivity,
            "expansion_add": self.expansion_add,
            "expansion_search": self.expansion_search,
            "dtype": self.dtype,
        }


@dataclass(slots=True)
class Hit:
    """One search result. ``score`` is what the results are ordered by: the fused RRF score
    (hybrid), the cosine similarity (vector) or the BM25 score (text); the sides' own scores and
    1-based ranks are kept where that side found the chunk."""

    chunk_id: str
    document_id: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    vector_score: float | None = None
    vector_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The hit as plain JSON-able values."""
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "text": self.text,
            "score": self.score,
            "metadata": self.metadata,
            "vector_score": self.vector_score,
            "vector_rank": self.vector_rank,
            "bm25_score": self.bm25_score,
            "bm25_rank": self.bm25_rank,
        }


def bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    """Texts as BM25 terms: lower-cased words of two or more characters, English stop words
    removed."""
    import bm25s

    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords="en", return_ids=False, show_progress=False
    )
    return tokens


class SearchIndex:
    """The searchable form of an index version: chunks, their vectors (kept normalised), an
    HNSW graph and BM25.

    ``documents`` (document id -> sha256) and ``chunker`` (the chunker's settings) are what the
    version was built from; they travel with the saved file so that a refresh can start from it.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        model_id: str,
        *,
        documents: Mapping[str, str] | None = None,
        chunker: Mapping[str, Any] | None = None,
        hnsw: HnswSettings | None = None,
        _graph: Any = None,
        _bm25: Any = None,
    ) -> None:
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
            raise InvalidInput(
                f"{len(chunks)} chunks need a matrix of {len(chunks)} vectors, got shape "
                f"{vectors.shape}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # rows already of length 1 are kept bit for bit: a reloaded or refreshed index keeps them
        off = (np.abs(norms - 1.0) > 1e-6) & (norms > 0)
        vectors = np.ascontiguousarray(np.where(off, vectors / np.where(off, norms, 1.0), vectors))
        ids = [c.id for c in chunks]
        if len(set(ids)) != len(ids):
            raise InvalidInput("chunk ids must be unique within an index")
        self.chunks = list(chunks)
        self.vectors = vectors
        self.model_id = model_id
        self.documents = dict(documents or {})
        self.chunker = dict(chunker or {})
        self.hnsw = hnsw or HnswSettings()
        self._rows = {chunk_id: row for row, chunk_id in enumerate(ids)}
        self._fields: dict[str, dict[str, np.ndarray]] = {}
        # load() passes both parts it read (its BM25 is None when the texts hold no term)
        self._graph = _graph if _graph is not None else self._build_graph()
        self._bm25 = _bm25 if _graph is not None else self._build_bm25()

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.chunks)

    def row(self, chunk_id: str) -> int:
        """The position of a chunk in :attr:`chunks` and :attr:`vectors`."""
        try:
            return self._rows[chunk_id]
        except KeyError:
            raise NotFound(f"chunk {chunk_id!r} is not in this index") from None

    # -- building --------------------------------------------------------------------------

    def _build_graph(self) -> Any:
        import numpy as np
        from usearch.index import Index

        graph = Index(
            ndim=self.dimensions,
            metric="ip",  # on normalised vectors: the cosine, computed faster
            dtype=self.hnsw.dtype,
            connectivity=self.hnsw.connectivity,
            expansion_add=self.hnsw.expansion_add,
            expansion_search=self.hnsw.expansion_search,
        )
        if len(self.chunks):
            graph.add(np.arange(len(self.chunks), dtype=np.uint64), self.vectors)
        return graph

    def _build_bm25(self) -> Any:
        """A BM25 retriever over the chunk texts; None when they hold no term at all."""
        import bm25s

        tokens = bm25_tokens([c.text for c in self.chunks])
        if not any(tokens):
            return None
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return retriever

    # -- searching -------------------------------------------------------------------------

    def search(
        self,
        query: str,
        embedder: Embedder,
        k: int = 10,
        *,
        where: Mapping[str, Any] | None = None,
        mode: str = "hybrid",
        rrf_k: int = RRF_K,
        candidates: int | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks for a text query; ``mode`` is ``hybrid``, ``vector`` or
        ``text`` (BM25 only); ``candidates`` (default ``max(50, 2k)``) per side before fusion."""
        _check_k(k)
        if mode not in MODES:
            raise InvalidInput(f"unknown search mode {mode!r}", hint=f"use one of {MODES}")
        if mode == "text":
            return self.search_text(query, k, where=where)
        self._check_model(embedder.model_id)
        vector = embedder.embed([query])[0]
        if mode == "vector":
            return self.search_vector(vector, k, model_id=embedder.model_id, where=where)
        if rrf_k < 1:
            raise InvalidInput(f"rrf_k must be at least 1, not {rrf_k}")
        pool = candidates if candidates is not None else max(50, 2 * k)
        _check_k(pool)
        allowed = self._allowed(where)
        dense = self._vector_rows(vector, pool, allowed)
        sparse = self._bm25_rows(query, pool, allowed)
        fused: dict[int, float] = {}
        for ranked in (dense, sparse):
            for rank, (row, _) in enumerate(ranked, start=1):
                fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
        dense_at = {row: (rank, s) for rank, (row, s) in enumerate(dense, start=1)}
        sparse_at = {row: (rank, s) for rank, (row, s) in enumerate(sparse, start=1)}
        order = sorted(fused, key=lambda r: (-fused[r], dense_at.get(r, (math.inf,))[0], r))
        hits = []
        for row in order[:k]:
            v_rank, v_score = dense_at.get(row, (None, None))
            b_rank, b_score = sparse_at.get(row, (None, None))
            hits.append(self._hit(row, fused[row], v_score, v_rank, b_score, b_rank))
        return hits

    def search_vector(
        self,
        vector: Any,
        k: int = 10,
        *,
        model_id: str,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The ``k`` chunks nearest to a query vector embedded by ``model_id``."""
        _check_k(k)
        self._check_model(model_id)
        rows = self._vector_rows(vector, k, self._allowed(where))
        return [self._hit(row, s, s, rank, None, None) for rank, (row, s) in enumerate(rows, 1)]

    def search_text(
        self, query: str, k: int = 10, *, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` chunks with the best BM25 score for ``query`` (chunks sharing no term
        with it are never returned)."""
        _check_k(k)
        rows = self._bm25_rows(query, k, self._allowed(where))
        return [self._hit(row, s, None, None, s, rank) for rank, (row, s) in enumerate(rows, 1)]

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise EmbeddingModelMismatch(
                f"this index was built with embedding model {self.model_id!r}; the query was "
                f"embedded with {model_id!r}",
                hint="query with the index's model, or rebuild the index with the new one",
                details={"index_model": self.model_id, "query_model": model_id},
            )

    def _vector_rows(
        self, vector: Any, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """(row, cosine similarity) of the nearest chunks, best first."""
        import numpy as np

        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dimensions:
            raise InvalidInput(
                f"the query vector has {query.shape[0]} dimensions, the index {self.dimensions}"
            )
        norm = float(np.linalg.norm(query))
        if not norm > 0:
            raise InvalidInput("the query vector is zero (or not finite): it has no direction")
        query = query / norm
        n = len(self.chunks)
        if n == 0 or (allowed is not None and allowed.size == 0):
            return []
        if allowed is None:
            return self._graph_rows(query, min(k, n))
        if allowed.size <= EXACT_LIMIT:
            return self._exact_rows(query, k, allowed)
        mask = np.zeros(n, dtype=bool)
        mask[allowed] = True
        share = allowed.size / n
        count = min(n, math.ceil(2 * k / share) + k)
        while True:
            found = [(row, s) for row, s in self._graph_rows(query, count) if mask[row]]
            if len(found) >= k:
                return found[:k]
            if count >= n // 2:
                return self._exact_rows(query, k, allowed)
            count = min(n, 4 * count)

    def _graph_rows(self, query: np.ndarray, count: int) -> list[tuple[int, float]]:
        """The graph's ``count`` nearest rows, scored (and ordered) by their float32 cosine:
        the graph's half-precision distances only choose them."""
        import numpy as np

        rows = self._graph.search(query, count).keys.astype(np.int64)
        sims = self.vectors[rows] @ query
        order = np.lexsort((rows, -sims))
        return list(zip(rows[order].tolist(), sims[order].tolist(), strict=True))

    def _exact_rows(self, query: np.ndarray, k: int, rows: np.ndarray) -> list[tuple[int, float]]:
        """Exact cosine search over ``rows``."""
        import numpy as np

        sims = self.vectors[rows] @ query
        take = min(k, rows.size)
        top = np.argpartition(-sims, take - 1)[:take]
        top = top[np.lexsort((rows[top], -sims[top]))]
        return [(int(rows[i]), float(sims[i])) for i in top]

    def _bm25_rows(self, query: str, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """(row, BM25 score) of the best-scoring chunks with a score above 0, best first."""
        import numpy as np

        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        terms = [t for t in bm25_tokens([query])[0] if t in vocab]
        if not terms:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
        if allowed is not None:
            masked = np.zeros_like(scores)
            masked[allowed] = scores[allowed]
            scores = masked
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return []
        take = min(k, positive.size)
        top = positive[np.argpartition(-scores[positive], take - 1)[:take]]
        top = top[np.lexsort((top, -scores[top]))]
        return [(int(row), float(scores[row])) for row in top]

    def _hit(
        self,
        row: int,
        score: float,
        v_score: float | None,
        v_rank: int | None,
        b_score: float | None,
        b_rank: int | None,
    ) -> Hit:
        chunk = self.chunks[row]
        return Hit(
            chunk.id, chunk.document_id, chunk.text, score, chunk.metadata,
            v_score, v_rank, b_score, b_rank,
        )  # fmt: skip

    # -- filters ---------------------------------------------------------------------------

    def _allowed(self, where: Mapping[str, Any] | None) -> np.ndarray | None:
        """The sorted rows whose metadata match every condition; None without conditions."""
        import numpy as np

        if not where:
            return None
        allowed: np.ndarray | None = None
        for name, condition in where.items():
            if isinstance(condition, Mapping):
                if set(condition) != {"in"} or isinstance(condition["in"], str | bytes):
                    raise InvalidInput(
                        f"filter on {name!r}: {condition!r} is not a condition",
                        hint='use a value for equality or {"in": [values]} for membership',
                    )
                values = list(condition["in"])
            else:
                values = [condition]
            by_value = self._field(name)
            parts = [by_value[key] for key in map(canonical_json, values) if key in by_value]
            if len(parts) == 1:
                rows = parts[0]  # already sorted and distinct
            else:
                rows = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
            allowed = rows if allowed is None else np.intersect1d(allowed, rows)
        return allowed

    def _field(self, name: str) -> dict[str, np.ndarray]:
        """canonical JSON of a value -> rows whose metadata hold it under ``name`` (built on
        first use and kept: one pass over the chunks per field)."""
        import numpy as np

        if name not in self._fields:
            groups: dict[str, list[int]] = {}
            for row, chunk in enumerate(self.chunks):
                if name == "document_id":
                    value = chunk.document_id
                elif name in chunk.metadata:
                    value = chunk.metadata[name]
                else:
                    continue
                groups.setdefault(canonical_json(value), []).append(row)
            self._fields[name] = {v: np.asarray(r, dtype=np.int64) for v, r in groups.items()}
        return self._fields[name]

    # -- files -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the index to one file, atomically (temporary file, then rename)."""
        import numpy as np

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "dimensions": self.dimensions,
            "count": len(self.chunks),
            "hnsw": self.hnsw.to_dict(),
            "chunker": self.chunker,
            "documents": self.documents,
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr("manifest.json", json.dumps(manifest))
                zf.writestr(
                    "chunks.jsonl", "".join(json.dumps(c.to_dict()) + "\n" for c in self.chunks)
                )
                buffer = io.BytesIO()
                np.save(buffer, self.vectors)
                zf.writestr("vectors.npy", buffer.getvalue())
                zf.writestr("graph.usearch", bytes(self._graph.save()))
                with tempfile.TemporaryDirectory() as folder:
                    if self._bm25 is not None:
                        self._bm25.save(folder, show_progress=False)
                    for item in sorted(Path(folder).iterdir()):
                        zf.write(item, f"bm25/{item.name}")
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | Path) -> SearchIndex:
        """An index saved by :meth:`save`."""
        import bm25s
        import numpy as np
        from usearch.index import Index

        source = Path(path)
        if not source.exists():
            raise NotFound(f"no index file at {source}")
        try:
            with zipfile.ZipFile(source) as zf:
                manifest = json.loads(zf.read("manifest.json"))
                if manifest.get("format") != FORMAT:
                    raise InvalidInput(f"{source} is not a Cauce index file")
                if manifest.get("format_version") != FORMAT_VERSION:
                    raise InvalidInput(
                        f"{source} has index format version {manifest.get('format_version')}, "
                        f"this Cauce reads {FORMAT_VERSION}",
                        hint="rebuild the index",
                    )
                chunks = [
                    Chunk.from_dict(json.loads(line))
                    for line in zf.read("chunks.jsonl").decode().splitlines()
                ]
                vectors = np.load(io.BytesIO(zf.read("vectors.npy")), allow_pickle=False)
                hnsw = HnswSettings(**manifest["hnsw"])
                graph = Index.restore(
                    zf.read("graph.usearch"),
                    connectivity=hnsw.connectivity,
                    expansion_add=hnsw.expansion_add,
                    expansion_search=hnsw.expansion_search,
                )
                retriever: Any = None
                bm25_files = [name for name in zf.namelist() if name.startswith("bm25/")]
                if bm25_files:
                    with tempfile.TemporaryDirectory() as folder:
                        for name in bm25_files:
                            Path(folder, name[5:]).write_bytes(zf.read(name))
                        retriever = bm25s.BM25.load(folder, show_progress=False)
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise InvalidInput(f"{source} is not a readable index file: {exc}") from None
        if graph is None or len(graph) != len(chunks):
            raise InvalidInput(f"{source}: its HNSW graph does not match its chunks")
        return cls(
            chunks,
            vectors,
            manifest["model_id"],
            documents=manifest["documents"],
            chunker=manifest["chunker"],
            hnsw=hnsw,
            _graph=graph,
            _bm25=retriever,
        )


def _check_k(k: int) -> None:
    if k < 1:
        raise InvalidInput(f"k must be at least 1, not {k}")
