"""RAG indexes: parse documents, chunk them, embed the chunks, search them; versions and refresh.

Each step is its own module and works on plain values (paths, lists, small interfaces), so the
store, the specs and the CLI wire them together::

    from cauce.genai.indexes import (
        MarkdownChunker, MiniLMEmbedder, SqliteCache, build_index, read_folder, refresh_index,
    )

    parsed = read_folder("docs/")                  # parsed.skipped: files left out, and why
    version = build_index(parsed.documents, MarkdownChunker(), MiniLMEmbedder(), SqliteCache(p))
    hits = version.index.search("how do I roll back?", MiniLMEmbedder(), k=5)
"""

from cauce.genai.indexes.build import (
    Changes,
    IndexVersion,
    build_index,
    diff_documents,
    refresh_index,
    version_id,
)
from cauce.genai.indexes.chunk import (
    Chunk,
    Chunker,
    MarkdownChunker,
    TokenChunker,
    chunker_from_settings,
)
from cauce.genai.indexes.embed import (
    Embedded,
    Embedder,
    EmbeddingCache,
    MemoryCache,
    MiniLMEmbedder,
    SqliteCache,
    embed_texts,
    minilm_id,
)
from cauce.genai.indexes.parse import Document, Parsed, Skipped, read_folder, read_rows
from cauce.genai.indexes.search import (
    RRF_K,
    EmbeddingModelMismatch,
    Hit,
    HnswSettings,
    SearchIndex,
)

__all__ = [
    "RRF_K",
    "Changes",
    "Chunk",
    "Chunker",
    "Document",
    "Embedded",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingModelMismatch",
    "Hit",
    "HnswSettings",
    "IndexVersion",
    "MarkdownChunker",
    "MemoryCache",
    "MiniLMEmbedder",
    "Parsed",
    "SearchIndex",
    "Skipped",
    "SqliteCache",
    "TokenChunker",
    "build_index",
    "chunker_from_settings",
    "diff_documents",
    "embed_texts",
    "minilm_id",
    "read_folder",
    "read_rows",
    "refresh_index",
    "version_id",
]
