"""Indexes kept in the workspace: ``kind: Index`` specs, versions, refresh, query, lineage.

An index names its source (a folder or fsspec URL, or a dataset's text column), its chunker and
its embedding model (the packaged all-MiniLM-L6-v2, or an embeddings connection). A refresh
reads the source, re-embeds only new and changed documents (vectors are cached in the store by
model and text hash), and registers a new version when the documents, chunker or model changed
(the same inputs give the same version id). Each version's searchable file is a
content-addressed artifact; its documents are lineage nodes (``document`` → ``index_version``),
and every query is a retrieval recorded with its hits and trace, so "which answers used this
document?" is one query (:func:`retrievals_of`).

The agent refreshes an index when it was never built, when its ``schedule`` is due, when it is
older than ``max_age``, or, for a dataset source, when the dataset has a newer version.

Example::

    cauce.apply({"kind": "Index", "name": "docs", "source": {"path": "docs/"}})
    cauce.indexes.refresh("docs")
    for hit in cauce.indexes.query("docs", "how do I roll back?", k=3):
        print(hit.document_id, hit.score)
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, select

from cauce.errors import InvalidInput, NotFound
from cauce.genai.indexes.quarantine import InjectionScan
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.store import new_id, now_ms
from cauce.store.schema import (
    dataset_versions,
    datasets,
    embeddings,
    index_chunks,
    index_documents,
    index_versions,
    indexes,
    retrieval_hits,
    retrievals,
)
from cauce.validation import Duration, check_cron, check_name, next_cron_time
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
        {"next_refresh_at": _next_refresh(spec, refreshed, now_ms())},
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


def _next_refresh(spec: IndexSpec, refreshed_at: int | None, now: int) -> int | None:
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
class IndexVersionInfo:
    """A stored index version."""

    index: str
    version: int
    id: str
    content_id: str
    embedding_model: str
    chunker: dict[str, Any]
    artifact_sha256: str
    document_count: int
    chunk_count: int
    stats: dict[str, Any]
    skipped: list[dict[str, str]]
    created_at: int
    user: str

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.index}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**asdict(self), "ref": self.ref}


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
    :func:`set_current` (a rollout's promotion) moves it."""
    from cauce.artifacts.records import record_blob
    from cauce.genai.indexes import quarantine
    from cauce.genai.indexes.build import build_index, refresh_index
    from cauce.genai.indexes.chunk import MarkdownChunker, TokenChunker

    ws = workspace or current()
    who = actor or ws.user
    row, spec = _index(ws, name)
    parsed, source_version = _read_source(ws, spec)
    chunker = (MarkdownChunker if spec.chunker.method == "markdown" else TokenChunker)(
        size=spec.chunker.size, overlap=spec.chunker.overlap
    )
    embedder = _embedder(ws, spec)
    cache = StoreEmbeddingCache(ws)
    previous = _newest_version(ws, row.id)
    held: list[quarantine.Held] = []
    screen = quarantine.screen_chunks(spec.injection, held) if spec.injection.scan else None
    if previous is None:
        built = build_index(parsed.documents, chunker, embedder, cache, screen=screen)
    else:
        built = refresh_index(
            _search_index(ws, previous), parsed.documents, chunker, embedder, cache, screen=screen
        )
    now = now_ms()
    schedule = {
        "refreshed_at": now,
        "next_refresh_at": _next_refresh(spec, now, now),
        "source_version_id": source_version,
    }
    if previous is not None and previous.content_id == built.id:
        with ws.store.write() as conn:
            conn.execute(indexes.update().where(indexes.c.id == row.id).values(**schedule))
        return Refreshed(_info(name, previous), False, built.changes.to_dict())
    with tempfile.TemporaryDirectory() as folder:
        path = built.index.save(Path(folder) / "index.cauce")
        blob = ws.artifacts.put_file(path, media_type="application/vnd.cauce.index")
    version_id = new_id()
    skipped = [{"document": s.id, "reason": s.reason} for s in parsed.skipped]
    stats: dict[str, Any] = {
        "changes": {k: len(v) for k, v in built.changes.to_dict().items()},
        "embedded": built.embedded,
        "cached": built.cached,
        "reused_chunks": built.reused_chunks,
        "quarantined": sum(h[5] == "quarantined" for h in held),
        "flagged": sum(h[5] == "flagged" for h in held),
        "seconds": built.seconds,
    }
    with ws.store.write() as conn:
        record_blob(conn, blob)
        number = (previous.version if previous is not None else 0) + 1
        values = {
            "id": version_id,
            "index_id": row.id,
            "version": number,
            "content_id": built.id,
            "embedding_model": embedder.model_id,
            "chunker": chunker.settings(),
            "artifact_sha256": blob.sha256,
            "document_count": len(built.documents),
            "chunk_count": len(built.index),
            "stats": stats,
            "skipped": skipped,
            "created_at": now,
            "user": who,
        }
        conn.execute(index_versions.insert().values(**values))
        media = {d.id: d.media_type for d in parsed.documents}
        if built.documents:
            conn.execute(
                index_documents.insert(),
                [
                    {
                        "index_version_id": version_id,
                        "document_id": doc,
                        "sha256": sha,
                        "media_type": media.get(doc, "text/plain"),
                    }
                    for doc, sha in built.documents.items()
                ],
            )
        _store_chunks(conn, row.id, built, previous)
        quarantine.record(conn, row.id, version_id, "indexing", held)
        for sha in sorted(set(built.documents.values())):
            add_edge(conn, ("document", sha), ("index_version", version_id), "indexed")
        if previous is not None:
            add_edge(conn, ("index_version", previous.id), ("index_version", version_id), "revised")
        moved = {"current_version_id": version_id} if promote else {}
        conn.execute(indexes.update().where(indexes.c.id == row.id).values(**moved, **schedule))
        audit.record(
            conn,
            who,
            "index.version.create",
            "index_version",
            version_id,
            after={
                "index": name,
                "version": number,
                "content_id": built.id,
                "current": promote,
                **stats["changes"],
            },
        )
    return Refreshed(_info(name, _version_row(ws, version_id)), True, built.changes.to_dict())


def _newest_version(ws: Workspace, index_id: str) -> Any:
    with ws.store.read() as conn:
        return conn.execute(
            select(index_versions)
            .where(index_versions.c.index_id == index_id)
            .order_by(index_versions.c.version.desc())
            .limit(1)
        ).first()


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
    return next(v for v in versions(name, workspace=ws) if v.version == version)


def move_current(
    conn: Connection, name: str, version: int, *, actor: str, reason: str | None = None
) -> bool:
    """:func:`set_current` in the caller's transaction (a rollout's promotion); False when the
    version was current already (nothing recorded)."""
    row = conn.execute(select(indexes).where(indexes.c.name == name)).first()
    if row is None:
        raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
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


def _store_chunks(conn: Connection, index_id: str, built: Any, previous: Any) -> None:
    """The chunks of the version's new and changed documents (all of them in a first build, or
    when the chunker changed), with their text and metadata; unchanged ones are already here."""
    from cauce.genai.indexes.chunk import settings_key

    key = settings_key(built.index.chunker)
    fresh = set(built.changes.new) | set(built.changes.changed)
    if previous is None or dict(previous.chunker) != built.index.chunker:
        fresh = set(built.documents)
    rows = [
        {
            "index_id": index_id,
            "id": hashlib.sha256(
                f"{key}|{built.documents[c.document_id]}|{c.id}".encode()
            ).hexdigest(),
            "chunker_key": key,
            "document_id": c.document_id,
            "document_sha256": built.documents[c.document_id],
            "chunk_id": c.id,
            "position": c.position,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "sha256": c.sha256,
            "metadata": c.metadata,
        }
        for c in built.index.chunks
        if c.document_id in fresh
    ]
    for start in range(0, len(rows), 500):
        conn.execute(_insert_ignore(conn, index_chunks, rows[start : start + 500]))


def chunks(
    name: str, *, version: int | None = None, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """The chunks of an index version (the current one by default) as the store keeps them:
    document, position, offsets, text and metadata, by document and position."""
    from cauce.genai.indexes.chunk import settings_key

    ws = workspace or current()
    row, _ = _index(ws, name)
    found = _pick_version(ws, row, name, version)
    key = settings_key(found.chunker)
    c, d = index_chunks.c, index_documents.c
    with ws.store.read() as conn:
        rows = conn.execute(
            select(index_chunks)
            .join(
                index_documents,
                (d.document_id == c.document_id) & (d.sha256 == c.document_sha256),
            )
            .where(
                c.index_id == row.id,
                c.chunker_key == key,
                d.index_version_id == found.id,
            )
            .order_by(c.document_id, c.position)
        ).all()
    return [
        {
            "chunk_id": r.chunk_id,
            "document_id": r.document_id,
            "position": r.position,
            "start": r.start,
            "end": r.end,
            "text": r.text,
            "sha256": r.sha256,
            "metadata": dict(r.metadata),
        }
        for r in rows
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
    """The embedding cache in the workspace's store (table ``embeddings``, float32 bytes)."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def get_many(self, model_id: str, hashes: Any) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes``."""
        import numpy as np

        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(hashes))
        with self.ws.store.read() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(embeddings.c.sha256, embeddings.c.vector).where(
                        embeddings.c.model_id == model_id,
                        embeddings.c.sha256.in_(wanted[start : start + 500]),
                    )
                )
                for sha, vector in rows:
                    found[sha] = np.frombuffer(bytes(vector), dtype=np.float32)
        return found

    def put_many(self, model_id: str, vectors: Any) -> None:
        """Keep vectors (a text already cached keeps its first vector)."""
        import numpy as np

        rows = [
            {
                "model_id": model_id,
                "sha256": sha,
                "vector": np.asarray(v, dtype=np.float32).tobytes(),
            }
            for sha, v in vectors.items()
        ]
        if not rows:
            return
        with self.ws.store.write() as conn:
            for start in range(0, len(rows), 500):
                conn.execute(_insert_ignore(conn, embeddings, rows[start : start + 500]))


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(rows).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(rows).on_conflict_do_nothing()


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
    the index was built with is refused."""
    import json

    from cauce.genai import tracing
    from cauce.genai.flows import pinned_index_version

    ws = workspace or current()
    row, spec = _index(ws, name)
    found = _pick_version(ws, row, name, version or pinned_index_version(name))
    index = _search_index(ws, found)
    chosen = embedder or _embedder(ws, spec)
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
            hits = screen_hits(ws, row.id, found.id, spec.injection, hits)
            if len(hits) < before:
                span.set("cauce.retrieval.dropped", before - len(hits))
        span.set(
            "gen_ai.retrieval.documents",
            json.dumps([{"id": h.chunk_id, "score": round(h.score, 6)} for h in hits]),
        )
        trace_id, span_id = span.trace_id, span.span_id
    _record_retrieval(ws, found.id, text, mode, k, hits, trace_id, span_id)
    return hits


def _record_retrieval(
    ws: Workspace,
    version_id: str,
    text: str,
    mode: str,
    k: int,
    hits: list[Hit],
    trace_id: str,
    span_id: str,
) -> None:
    retrieval_id = new_id()
    with ws.store.write() as conn:
        conn.execute(
            retrievals.insert().values(
                id=retrieval_id,
                index_version_id=version_id,
                query_sha256=hashlib.sha256(text.encode()).hexdigest(),
                mode=mode,
                k=k,
                trace_id=trace_id,
                span_id=span_id,
                created_at=now_ms(),
            )
        )
        if hits:
            conn.execute(
                retrieval_hits.insert(),
                [
                    {
                        "retrieval_id": retrieval_id,
                        "rank": rank,
                        "chunk_id": hit.chunk_id,
                        "document_id": hit.document_id,
                        "score": float(hit.score),
                    }
                    for rank, hit in enumerate(hits, start=1)
                ],
            )
        add_edge(conn, ("index_version", version_id), ("trace", trace_id), "retrieved")


def retrievals_of(
    document_id: str, *, index: str | None = None, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """Every recorded retrieval whose hits include the document (by its id in the index, e.g.
    its path): which answers used it, with their traces, newest first."""
    ws = workspace or current()
    query_ = (
        select(
            retrievals.c.id,
            retrievals.c.trace_id,
            retrievals.c.created_at,
            retrieval_hits.c.rank,
            retrieval_hits.c.chunk_id,
            index_versions.c.version,
            indexes.c.name,
        )
        .join(retrieval_hits, retrieval_hits.c.retrieval_id == retrievals.c.id)
        .join(index_versions, index_versions.c.id == retrievals.c.index_version_id)
        .join(indexes, indexes.c.id == index_versions.c.index_id)
        .where(retrieval_hits.c.document_id == document_id)
        .order_by(retrievals.c.created_at.desc(), retrieval_hits.c.rank)
    )
    if index is not None:
        query_ = query_.where(indexes.c.name == index)
    with ws.store.read() as conn:
        return [
            {
                "retrieval_id": r.id,
                "trace_id": r.trace_id,
                "at": r.created_at,
                "rank": r.rank,
                "chunk_id": r.chunk_id,
                "index": f"{r.name}@{r.version}",
            }
            for r in conn.execute(query_)
        ]


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInfo:
    """An index: its spec, current version and when it is refreshed next."""

    name: str
    id: str
    spec: dict[str, Any]
    current_version: int | None
    refreshed_at: int | None
    next_refresh_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


def list_indexes(*, workspace: Workspace | None = None) -> list[IndexInfo]:
    """Every index, by name."""
    ws = workspace or current()
    current_version = index_versions.c.version.label("current_version")
    with ws.store.read() as conn:
        rows = conn.execute(
            select(indexes, current_version)
            .outerjoin(index_versions, index_versions.c.id == indexes.c.current_version_id)
            .order_by(indexes.c.name)
        ).all()
    return [
        IndexInfo(
            r.name,
            r.id,
            dict(r.spec),
            r.current_version,
            r.refreshed_at,
            r.next_refresh_at,
        )
        for r in rows
    ]


def get_index(name: str, *, workspace: Workspace | None = None) -> IndexInfo:
    """One index."""
    found = [i for i in list_indexes(workspace=workspace) if i.name == name]
    if not found:
        raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
    return found[0]


def versions(name: str, *, workspace: Workspace | None = None) -> list[IndexVersionInfo]:
    """Every version of an index, oldest first."""
    ws = workspace or current()
    row, _ = _index(ws, name)
    with ws.store.read() as conn:
        found = conn.execute(
            select(index_versions)
            .where(index_versions.c.index_id == row.id)
            .order_by(index_versions.c.version)
        ).all()
    return [_info(name, r) for r in found]


def claim_due(ws: Workspace, now: int | None = None) -> list[str]:
    """Claim every index due for a refresh (compare-and-set on its next refresh time), and
    every dataset-sourced index whose dataset has a newer version; return their names."""
    now = now_ms() if now is None else now
    claimed = []
    with ws.store.write() as conn:
        for row in conn.execute(select(indexes).order_by(indexes.c.name)).all():
            due = row.next_refresh_at is not None and row.next_refresh_at <= now
            dataset = row.spec.get("source", {}).get("dataset")
            if not due and dataset is not None and row.refreshed_at is not None:
                newest = _newest_dataset_version(conn, dataset)
                due = newest is not None and newest != row.source_version_id
            if not due:
                continue
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
    return claimed


def _newest_dataset_version(conn: Connection, ref: str) -> str | None:
    name = ref.split("@")[0]
    return conn.execute(
        select(dataset_versions.c.id)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(datasets.c.name == name)
        .order_by(dataset_versions.c.version.desc())
        .limit(1)
    ).scalar()


def _index(ws: Workspace, name: str) -> tuple[Any, IndexSpec]:
    with ws.store.read() as conn:
        row = conn.execute(select(indexes).where(indexes.c.name == name)).first()
    if row is None:
        raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
    return row, IndexSpec.model_validate({"kind": "Index", **row.spec})


def _version_row(ws: Workspace, version_id: str) -> Any:
    with ws.store.read() as conn:
        return conn.execute(select(index_versions).where(index_versions.c.id == version_id)).one()


def _pick_version(ws: Workspace, row: Any, name: str, number: int | None) -> Any:
    if number is None:
        if row.current_version_id is None:
            raise NotFound(
                f"index {name!r} has no version yet", hint=f"cauce indexes refresh {name}"
            )
        return _version_row(ws, row.current_version_id)
    with ws.store.read() as conn:
        found = conn.execute(
            select(index_versions).where(
                index_versions.c.index_id == row.id, index_versions.c.version == number
            )
        ).first()
    if found is None:
        raise NotFound(f"index {name!r} has no version {number}")
    return found


def _search_index(ws: Workspace, version: Any) -> SearchIndex:
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


def _info(name: str, row: Any) -> IndexVersionInfo:
    return IndexVersionInfo(
        index=name,
        version=row.version,
        id=row.id,
        content_id=row.content_id,
        embedding_model=row.embedding_model,
        chunker=dict(row.chunker),
        artifact_sha256=row.artifact_sha256,
        document_count=row.document_count,
        chunk_count=row.chunk_count,
        stats=dict(row.stats),
        skipped=list(row.skipped),
        created_at=row.created_at,
        user=row.user,
    )
