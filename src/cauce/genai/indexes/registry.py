"""Indexes kept in the workspace: ``kind: Index`` specs, versions, refresh, query, lineage.

An index names its source (a folder or fsspec URL, or a dataset's text column), its chunker and
its embedding model (the packaged all-MiniLM-L6-v2, or an embeddings connection). A refresh
reads the source, re-embeds only new and changed documents (vectors are cached in the store by
model and text hash), and registers a new version when the documents, chunker or model changed
(the same inputs give the same version id). Each version's searchable file is a
content-addressed artifact; its documents are lineage nodes (``document`` → ``index_version``),
and every query is a retrieval recorded with its hits and trace, so "which answers used this
document?" is one query (:func:`~cauce.genai.indexes.records.retrievals_of`).

A refresh and a query run where they are called (the source is read, chunked and embedded, the
index file searched there); what they write goes through the operations of
:mod:`~cauce.genai.indexes.records`, to the server for a workspace on one.

The agent refreshes an index when it was never built, when its ``schedule`` is due, when it is
older than ``max_age``, or, for a dataset source, when the dataset has a newer version.

Example::

    cauce.apply({"kind": "Index", "name": "docs", "source": {"path": "docs/"}})
    cauce.indexes.refresh("docs")
    for hit in cauce.indexes.query("docs", "how do I roll back?", k=3):
        print(hit.document_id, hit.score)
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, select

from cauce.errors import InvalidInput, NotFound
from cauce.genai.indexes.quarantine import Held, InjectionScan
from cauce.genai.indexes.records import (
    BuiltVersion,
    ChunkRecord,
    IndexInfo,
    IndexVersionInfo,
    RetrievedChunk,
    cache_vectors,
    cached_vectors,
    get_index,
    get_version,
    index_row,
    mark_refreshed,
    record_retrieval,
    record_version,
    version_info,
    version_row,
    versions,
)
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import now_ms
from cauce.store.schema import (
    dataset_versions,
    datasets,
    index_versions,
    indexes,
)
from cauce.validation import (
    Duration,
    check_cron,
    check_int,
    check_name,
    check_time_ms,
    next_cron_time,
)
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import numpy as np

    from cauce.genai.indexes.embed import Embedder
    from cauce.genai.indexes.search import Hit, SearchIndex
    from cauce.specs import Applied


# -- the spec ----------------------------------------------------------------------------------


class Source(BaseModel):
    """Where the documents are: a folder or fsspec URL, or a dataset's text column."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    dataset: str | None = None
    text: str | None = None
    id: str | None = None
    media_type: Literal["text/plain", "text/markdown"] = "text/plain"

    @model_validator(mode="after")
    def _one(self) -> Source:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give exactly one of path or dataset")
        if self.dataset is not None and self.text is None:
            raise ValueError("a dataset source names its text column (text)")
        return self


class ChunkerSpec(BaseModel):
    """How documents are cut: by tokens, or by Markdown headings then tokens."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["tokens", "markdown"] = "markdown"
    size: int = Field(default=200, ge=8, le=254)
    overlap: int = Field(default=40, ge=0)


class EmbeddingsSpec(BaseModel):
    """The embedding model: the packaged MiniLM, or a connection's embeddings model."""

    model_config = ConfigDict(extra="forbid")

    connection: str | None = None
    model: str | None = None


class IndexSpec(BaseModel):
    """A ``kind: Index`` document."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["Index"] = "Index"
    name: str
    description: str | None = None
    source: Source
    chunker: ChunkerSpec = Field(default_factory=ChunkerSpec)
    embeddings: EmbeddingsSpec = Field(default_factory=EmbeddingsSpec)
    max_age: Duration | None = None
    schedule: str | None = None
    injection: InjectionScan = Field(default_factory=InjectionScan)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "index name")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return check_cron(value)

    @model_validator(mode="after")
    def _overlap(self) -> IndexSpec:
        if self.chunker.overlap >= self.chunker.size:
            raise ValueError("chunker.overlap must be smaller than chunker.size")
        return self


def save_index(conn: Connection, ws: Workspace, spec: IndexSpec) -> Applied:
    """Apply a ``kind: Index`` document in the caller's transaction; the agent (or ``cauce
    indexes refresh``) builds it."""
    from cauce.specs import save_spec

    body = spec.model_dump(mode="json", exclude={"kind"}, exclude_none=True)
    if spec.max_age is not None:
        body["max_age"] = f"{spec.max_age}ms"  # reads back as the same duration
    row = conn.execute(select(indexes).where(indexes.c.name == spec.name)).first()
    refreshed = row.refreshed_at if row is not None else None
    return save_spec(
        conn,
        ws,
        indexes,
        "Index",
        body,
        {"next_refresh_at": next_refresh(spec, refreshed, now_ms())},
    )


def check_index(ws: Workspace, spec: IndexSpec, declared: Any) -> None:
    """Refuse an index whose embeddings connection or dataset neither exists nor is declared."""
    from cauce.data.assets import get_version
    from cauce.genai import connections

    name = spec.embeddings.connection
    if name is not None and ("Connection", name) not in declared:
        connections.get(name, workspace=ws)
    if spec.source.dataset is not None:
        get_version(spec.source.dataset, workspace=ws)


def next_refresh(spec: IndexSpec, refreshed_at: int | None, now: int) -> int | None:
    """When an index refreshed at ``refreshed_at`` is due again (now, when never refreshed)."""
    if refreshed_at is None:
        return now
    due = []
    if spec.schedule:
        due.append(next_cron_time(spec.schedule, refreshed_at))
    if spec.max_age is not None:
        due.append(refreshed_at + spec.max_age)
    return min(due) if due else None


# -- versions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: the version built (or the newest, unchanged), and whether it is new."""

    version: IndexVersionInfo
    created: bool
    changes: dict[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {"version": self.version.to_dict(), "created": self.created, "changes": self.changes}


def refresh(
    name: str,
    *,
    actor: str | None = None,
    promote: bool = True,
    workspace: Workspace | None = None,
) -> Refreshed:
    """Read the index's source and build its next version (only what changed is embedded); the
    same documents, chunker and model leave the newest version in place. With ``promote``
    False the new version is built but searches keep the current one until
    :func:`set_current` (a rollout's promotion) moves it.

    The source is read, chunked and embedded here, and the index file uploaded; the version is
    then recorded (:func:`record_version`), through the server for a workspace on one.
    """
    from cauce.genai.indexes import quarantine
    from cauce.genai.indexes.build import build_index, refresh_index
    from cauce.genai.indexes.chunk import MarkdownChunker, TokenChunker

    ws = workspace or current()
    spec = _spec(get_index(name, workspace=ws))
    parsed, source_version = _read_source(ws, spec)
    chunker = (MarkdownChunker if spec.chunker.method == "markdown" else TokenChunker)(
        size=spec.chunker.size, overlap=spec.chunker.overlap
    )
    embedder = _embedder(ws, spec)
    cache = StoreEmbeddingCache(ws)
    history = versions(name, workspace=ws)
    previous = history[-1] if history else None
    held: list[Held] = []
    screen = quarantine.screen_chunks(spec.injection, held) if spec.injection.scan else None
    if previous is None:
        built = build_index(parsed.documents, chunker, embedder, cache, screen=screen)
    else:
        built = refresh_index(
            _search_index(ws, previous), parsed.documents, chunker, embedder, cache, screen=screen
        )
    if previous is not None and previous.content_id == built.id:
        mark_refreshed(name, source_version_id=source_version, workspace=ws)
        return Refreshed(previous, False, built.changes.to_dict())
    with tempfile.TemporaryDirectory() as folder:
        path = built.index.save(Path(folder) / "index.cauce")
        blob = ws.artifacts.put_file(path, media_type="application/vnd.cauce.index")
    fresh = set(built.changes.new) | set(built.changes.changed)
    if previous is None or previous.chunker != built.index.chunker:
        fresh = set(built.documents)
    record = BuiltVersion(
        after=previous.version if previous is not None else None,
        content_id=built.id,
        embedding_model=embedder.model_id,
        chunker=chunker.settings(),
        blob=blob,
        documents=dict(built.documents),
        media_types={d.id: d.media_type for d in parsed.documents},
        chunk_count=len(built.index),
        chunks=[
            ChunkRecord(
                c.document_id, c.id, c.position, c.start, c.end, c.text, c.sha256, c.metadata
            )
            for c in built.index.chunks
            if c.document_id in fresh
        ],
        stats={
            "changes": {k: len(v) for k, v in built.changes.to_dict().items()},
            "embedded": built.embedded,
            "cached": built.cached,
            "reused_chunks": built.reused_chunks,
            "quarantined": sum(h[5] == "quarantined" for h in held),
            "flagged": sum(h[5] == "flagged" for h in held),
            "seconds": built.seconds,
        },
        skipped=[{"document": s.id, "reason": s.reason} for s in parsed.skipped],
        held=held,
        source_version_id=source_version,
    )
    version = record_version(name, record, promote=promote, actor=actor, workspace=ws)
    return Refreshed(version, True, built.changes.to_dict())


@operation("PUT /indexes/{name}/current")
def set_current(
    name: str,
    version: int,
    *,
    reason: str | None = None,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> IndexVersionInfo:
    """Make ``version`` the one searches read (rolling back is setting an older one); audited
    with its reason and actor, like an alias move."""
    ws = workspace or current()
    with ws.store.write() as conn:
        move_current(conn, name, version, actor=actor or ws.user, reason=reason)
        row = index_row(conn, name)
        return version_info(name, version_row(conn, row, name, version))


def move_current(
    conn: Connection, name: str, version: int, *, actor: str, reason: str | None = None
) -> bool:
    """:func:`set_current` in the caller's transaction (a rollout's promotion); False when the
    version was current already (nothing recorded)."""
    check_int(version, "index version")
    row = index_row(conn, name)
    target = conn.execute(
        select(index_versions).where(
            index_versions.c.index_id == row.id, index_versions.c.version == version
        )
    ).first()
    if target is None:
        raise NotFound(f"index {name!r} has no version {version}")
    if target.id == row.current_version_id:
        return False
    old = None
    if row.current_version_id is not None:
        old = conn.execute(
            select(index_versions.c.version).where(index_versions.c.id == row.current_version_id)
        ).scalar()
    conn.execute(
        indexes.update()
        .where(indexes.c.id == row.id)
        .values(current_version_id=target.id, updated_at=now_ms())
    )
    audit.record(
        conn,
        actor,
        "index.current.set",
        "index",
        row.id,
        before={"index": name, "version": old},
        after={"index": name, "version": version, "reason": reason},
    )
    return True


@operation("GET /indexes/{name}/current-history")
def current_history(name: str, *, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """Every move of the version searches read, oldest first: from, to, why, who and when (as
    a prompt's :func:`~cauce.genai.prompts.label_history`)."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = index_row(conn, name)
    moves = audit.events(
        ws, entity_kind="index", entity_id=row.id, action="index.current.set", limit=100_000
    )
    return [
        {
            "from_version": (e.before or {}).get("version"),
            "to_version": (e.after or {}).get("version"),
            "reason": (e.after or {}).get("reason"),
            "at": e.at,
            "user": e.actor,
        }
        for e in reversed(moves)
    ]


def _read_source(ws: Workspace, spec: IndexSpec) -> tuple[Any, str | None]:
    from cauce.genai.indexes.parse import read_folder, read_rows

    source = spec.source
    if source.path is not None:
        options = {}
        if ws.settings.s3_endpoint_url and source.path.startswith("s3://"):
            options["endpoint_url"] = ws.settings.s3_endpoint_url
        return read_folder(source.path, storage_options=options or None), None
    from cauce.data.assets import get_version
    from cauce.data.assets import load as load_data

    version = get_version(str(source.dataset), workspace=ws)
    frame = load_data(version.ref, workspace=ws)
    for column in (source.text, source.id):
        if column is not None and column not in frame.columns:
            raise InvalidInput(
                f"index {spec.name!r}: dataset {version.ref} has no column {column!r}",
                details={"field": "source"},
            )
    ids = frame[source.id].astype(str) if source.id else frame.index.astype(str)
    rows = zip(ids.tolist(), frame[str(source.text)].tolist(), strict=True)
    return read_rows(rows, media_type=source.media_type), version.id


# -- embeddings --------------------------------------------------------------------------------


class StoreEmbeddingCache:
    """The embedding cache in the workspace's store (table ``embeddings``, float32 bytes),
    through the server for a workspace on one."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def get_many(self, model_id: str, hashes: Any) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes``."""
        import numpy as np

        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), _VECTORS_PER_CALL):
            part = cached_vectors(
                model_id, wanted[start : start + _VECTORS_PER_CALL], workspace=self.ws
            )
            for sha, text in part.items():
                found[sha] = np.frombuffer(base64.b64decode(text), dtype=np.float32)
        return found

    def put_many(self, model_id: str, vectors: Any) -> None:
        """Keep vectors (a text already cached keeps its first vector)."""
        import numpy as np

        encoded = {
            sha: base64.b64encode(np.asarray(v, dtype=np.float32).tobytes()).decode()
            for sha, v in vectors.items()
        }
        items = list(encoded.items())
        for start in range(0, len(items), _VECTORS_PER_CALL):
            cache_vectors(
                model_id, dict(items[start : start + _VECTORS_PER_CALL]), workspace=self.ws
            )


# One call's share: 2,000 vectors of 1,024 dimensions is about 11 MB of JSON.
_VECTORS_PER_CALL = 2000


class ConnectionEmbedder:
    """Embeddings from a connection's embeddings model (OpenAI-compatible)."""

    def __init__(self, ws: Workspace, connection: str, model: str | None):
        from cauce.genai import connections

        self.client = connections.client(connection, workspace=ws)
        self.model = model or self.client.spec.models.embeddings
        if not self.model:
            raise InvalidInput(
                f"connection {connection!r} names no embeddings model: set embeddings.model"
            )
        self.model_id = f"{connection}/{self.model}"
        # The vectors' length, asked of the server once.
        self.dimensions = len(self.client.embed(["dimensions"], model=self.model).vectors[0])

    def embed(self, texts: Any) -> np.ndarray:
        """One row per text."""
        import numpy as np

        vectors = self.client.embed(list(texts), model=self.model).vectors
        return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), self.dimensions)


_minilm: list[Any] = []
_minilm_lock = threading.Lock()


def _embedder(ws: Workspace, spec: IndexSpec) -> Embedder:
    if spec.embeddings.connection is not None:
        return ConnectionEmbedder(ws, spec.embeddings.connection, spec.embeddings.model)
    if spec.embeddings.model not in (None, "minilm"):
        raise InvalidInput(
            f"index {spec.name!r}: embeddings.model {spec.embeddings.model!r} needs a connection; "
            "without one the model is the packaged all-MiniLM-L6-v2 ('minilm')"
        )
    from cauce.genai.indexes.embed import MiniLMEmbedder

    with _minilm_lock:  # one copy of the model per process
        if not _minilm:
            _minilm.append(MiniLMEmbedder())
        return _minilm[0]  # type: ignore[no-any-return]


# -- querying ----------------------------------------------------------------------------------

_loaded: dict[str, SearchIndex] = {}
_loaded_lock = threading.Lock()


def query(
    name: str,
    text: str,
    *,
    k: int = 5,
    mode: str = "hybrid",
    where: dict[str, Any] | None = None,
    version: int | None = None,
    embedder: Embedder | None = None,
    workspace: Workspace | None = None,
) -> list[Hit]:
    """The ``k`` best chunks of an index version (the current one by default) for ``text``,
    traced as a retrieval span and recorded with its hits. An ``embedder`` of another model than
    the index was built with is refused.

    The index file is searched here (downloaded once into the local cache); the retrieval is
    recorded by :func:`record_retrieval`.
    """
    import json

    from cauce.genai import tracing
    from cauce.genai.flows import pinned_index_version

    ws = workspace or current()
    spec = _spec(get_index(name, workspace=ws))
    found = get_version(name, version or pinned_index_version(name), workspace=ws)
    index = _search_index(ws, found)
    chosen = embedder or _embedder(ws, spec)
    held: list[Held] = []
    with tracing.span(
        f"retrieval {name}",
        operation="retrieval",
        attributes={
            "gen_ai.data_source.id": f"{name}@{found.version}",
            "cauce.retrieval.k": k,
            "cauce.retrieval.mode": mode,
        },
        workspace=ws,
    ) as span:
        span.content("gen_ai.retrieval.query.text", text)
        hits = index.search(text, chosen, k, where=where, mode=mode)
        if spec.injection.scan:
            from cauce.genai.indexes.quarantine import screen_hits

            before = len(hits)
            hits, held = screen_hits(spec.injection, hits)
            if len(hits) < before:
                span.set("cauce.retrieval.dropped", before - len(hits))
        span.set(
            "gen_ai.retrieval.documents",
            json.dumps([{"id": h.chunk_id, "score": round(h.score, 6)} for h in hits]),
        )
        trace_id, span_id = span.trace_id, span.span_id
    record_retrieval(
        name,
        found.version,
        hashlib.sha256(text.encode()).hexdigest(),
        mode,
        k,
        [RetrievedChunk(h.chunk_id, h.document_id, float(h.score)) for h in hits],
        trace_id=trace_id,
        span_id=span_id,
        held=held,
        workspace=ws,
    )
    return hits


def _due(conn: Connection, now: int) -> list[Any]:
    """The indexes due at ``now``: their refresh time has come, or (dataset sources) their
    dataset has a newer version than the one they were built from."""
    found = []
    for row in conn.execute(select(indexes).order_by(indexes.c.name)).all():
        due = row.next_refresh_at is not None and row.next_refresh_at <= now
        dataset = row.spec.get("source", {}).get("dataset")
        if not due and dataset is not None and row.refreshed_at is not None:
            newest = _newest_dataset_version(conn, dataset)
            due = newest is not None and newest != row.source_version_id
        if due:
            found.append(row)
    return found


@operation("POST /indexes/claims")
def claim_due_indexes(
    *, now: int | None = None, workspace: Workspace | None = None
) -> tuple[str, ...]:
    """Claim every index due for a refresh at ``now`` (the server's clock by default), each with
    a compare-and-set on its refresh times, and every dataset-sourced index whose dataset has a
    newer version; return their names."""
    ws = workspace or current()
    now = now_ms() if now is None else check_time_ms(now, "now")
    with ws.store.read() as conn:  # most looks find nothing: no write lock for those
        if not _due(conn, now):
            return ()
    claimed = []
    with ws.store.write() as conn:
        for row in _due(conn, now):
            # The claim moves the next refresh a lease ahead; the refresh sets the real one.
            result = conn.execute(
                indexes.update()
                .where(
                    indexes.c.id == row.id,
                    indexes.c.updated_at == row.updated_at,
                    (indexes.c.refreshed_at == row.refreshed_at)
                    if row.refreshed_at is not None
                    else indexes.c.refreshed_at.is_(None),
                )
                .values(next_refresh_at=now + 600_000, refreshed_at=now),
                execution_options={"preserve_rowcount": True},
            )
            if result.rowcount == 1:
                claimed.append(row.name)
    return tuple(claimed)


def claim_due(ws: Workspace, now: int | None = None) -> list[str]:
    """The indexes due at ``now`` in ``ws``, claimed (:func:`claim_due_indexes`)."""
    return list(claim_due_indexes(now=now, workspace=ws))


def _newest_dataset_version(conn: Connection, ref: str) -> str | None:
    name = ref.split("@")[0]
    return conn.execute(
        select(dataset_versions.c.id)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name)
        .order_by(dataset_versions.c.version.desc())
        .limit(1)
    ).scalar()


def _spec(info: IndexInfo) -> IndexSpec:
    return IndexSpec.model_validate({"kind": "Index", **info.spec})


def _search_index(ws: Workspace, version: IndexVersionInfo) -> SearchIndex:
    from cauce.genai.indexes.search import SearchIndex

    with _loaded_lock:
        found = _loaded.get(version.artifact_sha256)
    if found is not None:
        return found
    path = ws.cache_dir / "indexes" / f"{version.artifact_sha256}.cauce"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ws.artifacts.get_file(version.artifact_sha256, path)
    loaded = SearchIndex.load(path)
    with _loaded_lock:
        return _loaded.setdefault(version.artifact_sha256, loaded)
