"""Index versions: build one from documents, or refresh the previous one.

An index version is identified by what it was built from: its documents' ids and hashes, the
chunker's settings and the embedding model id (:func:`version_id`). Building the same documents
with the same settings and model gives the same id.

A refresh compares the new documents with the previous version's (:func:`diff_documents`):
unchanged documents keep their chunks and vectors, new and changed ones are chunked and embedded
(through the embedding cache, so a text embedded before is not embedded again), deleted ones are
dropped. When the chunker settings or the embedding model differ from the previous version's,
nothing can be kept and every document is chunked again (vectors still come from the cache where
it has them)::

    v1 = build_index(read_folder("docs/").documents, MarkdownChunker(), MiniLMEmbedder(), cache)
    v1.index.save("index-v1.cauce")
    v2 = refresh_index(SearchIndex.load("index-v1.cauce"), read_folder("docs/").documents, ...)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.errors import AlreadyExists
from cauce.genai.indexes.chunk import Chunk, Chunker, canonical_json
from cauce.genai.indexes.embed import Embedder, EmbeddingCache, embed_texts
from cauce.genai.indexes.parse import Document
from cauce.genai.indexes.search import HnswSettings, SearchIndex

if TYPE_CHECKING:
    import numpy as np

# Takes a version's new chunks, returns those it may hold (the rest are held back).
Screen = Callable[[list[Chunk]], list[Chunk]]


def version_id(documents: Mapping[str, str], chunker: Mapping[str, Any], model_id: str) -> str:
    """The id of the index version built from ``documents`` (id -> sha256), with a chunker of
    these ``chunker`` settings and the embedding model ``model_id``: a sha256."""
    identity = {
        "documents": sorted(documents.items()),
        "chunker": dict(chunker),
        "embedding_model": model_id,
    }
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


@dataclass(frozen=True)
class Changes:
    """How a set of documents differs from a previous version's (each list sorted by id)."""

    new: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        """The four lists by name."""
        return {
            "new": self.new,
            "changed": self.changed,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }


def diff_documents(previous: Mapping[str, str], documents: Sequence[Document]) -> Changes:
    """New, changed (other sha256), deleted and unchanged documents against ``previous``
    (document id -> sha256)."""
    current = _hashes(documents)
    return Changes(
        new=sorted(d for d in current if d not in previous),
        changed=sorted(d for d in current if d in previous and previous[d] != current[d]),
        deleted=sorted(d for d in previous if d not in current),
        unchanged=sorted(d for d in current if d in previous and previous[d] == current[d]),
    )


@dataclass
class IndexVersion:
    """A built index version and what it took: the changes against the previous version
    (everything is new in a first build), chunks reused, texts embedded by the model, vectors
    taken from the cache, and seconds per stage (chunk, embed, index)."""

    id: str
    index: SearchIndex
    changes: Changes
    reused_chunks: int
    embedded: int
    cached: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def documents(self) -> dict[str, str]:
        """Document id -> sha256 of the documents in this version."""
        return self.index.documents


def build_index(
    documents: Sequence[Document],
    chunker: Chunker,
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    *,
    hnsw: HnswSettings | None = None,
    screen: Screen | None = None,
) -> IndexVersion:
    """A new index version from every document: chunk, (screen,) embed (through ``cache``),
    index. ``screen`` takes the new chunks and returns those to keep (an injection scan)."""
    changes = _changes_all_new(documents)
    return _assemble(documents, [], None, changes, chunker, embedder, cache, hnsw, screen)


def refresh_index(
    previous: SearchIndex,
    documents: Sequence[Document],
    chunker: Chunker,
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    *,
    hnsw: HnswSettings | None = None,
    screen: Screen | None = None,
) -> IndexVersion:
    """The next index version: ``previous``'s chunks and vectors kept for unchanged documents,
    new and changed documents chunked, screened and embedded, deleted ones dropped."""
    changes = diff_documents(previous.documents, documents)
    same_recipe = previous.chunker == chunker.settings() and previous.model_id == embedder.model_id
    keep = set(changes.unchanged) if same_recipe else set()
    kept = [c for c in previous.chunks if c.document_id in keep]
    rows = [previous.row(c.id) for c in kept]
    kept_vectors = previous.vectors[rows] if rows else None
    by_id = {d.id: d for d in documents}
    # Chunks keep their text and vectors; their metadata follow the document's current metadata.
    kept = [_with_metadata(c, by_id[c.document_id]) for c in kept]
    return _assemble(
        documents,
        kept,
        kept_vectors,
        changes,
        chunker,
        embedder,
        cache,
        hnsw or previous.hnsw,
        screen,
    )


def _assemble(
    documents: Sequence[Document],
    kept: list[Chunk],
    kept_vectors: np.ndarray | None,
    changes: Changes,
    chunker: Chunker,
    embedder: Embedder,
    cache: EmbeddingCache | None,
    hnsw: HnswSettings | None,
    screen: Screen | None = None,
) -> IndexVersion:
    import numpy as np

    hashes = _hashes(documents)
    kept_documents = {c.document_id for c in kept}
    todo = [d for d in documents if d.id not in kept_documents]
    started = time.perf_counter()
    fresh = chunker.split(todo)
    if screen is not None:
        fresh = screen(fresh)
    chunked = time.perf_counter()
    embedded = embed_texts([c.text for c in fresh], embedder, cache, [c.sha256 for c in fresh])
    embedding_done = time.perf_counter()
    chunks = kept + fresh
    parts = [embedded.vectors] if kept_vectors is None else [kept_vectors, embedded.vectors]
    vectors = np.concatenate(parts) if chunks else np.zeros((0, embedder.dimensions), np.float32)
    order = sorted(range(len(chunks)), key=lambda i: (chunks[i].document_id, chunks[i].position))
    settings = chunker.settings()
    index = SearchIndex(
        [chunks[i] for i in order],
        vectors[order],
        embedder.model_id,
        documents=hashes,
        chunker=settings,
        hnsw=hnsw,
    )
    finished = time.perf_counter()
    return IndexVersion(
        id=version_id(hashes, settings, embedder.model_id),
        index=index,
        changes=changes,
        reused_chunks=len(kept),
        embedded=embedded.embedded,
        cached=embedded.cached,
        seconds={
            "chunk": chunked - started,
            "embed": embedding_done - chunked,
            "index": finished - embedding_done,
        },
    )


def _hashes(documents: Sequence[Document]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for doc in documents:
        if doc.id in hashes:
            raise AlreadyExists(f"document id {doc.id!r} appears twice")
        hashes[doc.id] = doc.sha256
    return hashes


def _changes_all_new(documents: Sequence[Document]) -> Changes:
    return Changes(new=sorted(_hashes(documents)), changed=[], deleted=[], unchanged=[])


def _with_metadata(chunk: Chunk, document: Document) -> Chunk:
    metadata = {**document.metadata, "media_type": document.media_type}
    if "headings" in chunk.metadata:
        metadata["headings"] = chunk.metadata["headings"]
    if metadata == chunk.metadata:
        return chunk
    return Chunk(
        chunk.id, chunk.document_id, chunk.position, chunk.text, chunk.sha256,
        chunk.start, chunk.end, metadata,
    )  # fmt: skip
