"""RAG indexes: parse documents, chunk them, embed the chunks, search them; versions and refresh.

Each step is its own module and works on plain values (paths, lists, small interfaces);
:mod:`~cauce.genai.indexes.registry` keeps named indexes and their versions in the workspace
(``cauce.indexes.refresh``, ``cauce.indexes.query``). The engine alone::

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
from cauce.genai.indexes.quarantine import InjectionScan, quarantined
from cauce.genai.indexes.records import (
    IndexInfo,
    IndexVersionInfo,
    chunks,
    get_index,
    list_indexes,
    retrievals_of,
    versions,
)
from cauce.genai.indexes.registry import (
    IndexSpec,
    Refreshed,
    current_history,
    query,
    refresh,
    set_current,
)
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
    "IndexInfo",
    "IndexSpec",
    "IndexVersion",
    "IndexVersionInfo",
    "InjectionScan",
    "MarkdownChunker",
    "MemoryCache",
    "MiniLMEmbedder",
    "Parsed",
    "Refreshed",
    "SearchIndex",
    "Skipped",
    "SqliteCache",
    "TokenChunker",
    "build_index",
    "chunker_from_settings",
    "chunks",
    "current_history",
    "diff_documents",
    "embed_texts",
    "get_index",
    "list_indexes",
    "minilm_id",
    "quarantined",
    "query",
    "read_folder",
    "read_rows",
    "refresh",
    "refresh_index",
    "retrievals_of",
    "set_current",
    "version_id",
    "versions",
]
