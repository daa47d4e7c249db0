"""The records of indexes in the store, each an operation: indexes and their versions, the
chunks of a version, retrievals, the chunks a scan held back, cached embedding vectors.

:mod:`~cauce.genai.indexes.registry` does the work that needs the documents and the model (read,
chunk, embed, search) where it is called, and ends with one of these to record what it did; with
``CAUCE_SERVER_URL`` set they run on the server, and the index file goes up beforehand as a blob.

Example::

    [version.ref for version in cauce.indexes.versions("docs")]   # ['docs@1', 'docs@2']
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from cauce.artifacts import Blob
from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai.indexes.quarantine import Held
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.store import dialect_insert, new_id, now_ms
from cauce.store.schema import (
    embeddings,
    index_chunks,
    index_documents,
    index_versions,
    indexes,
    retrieval_hits,
    retrievals,
)
from cauce.validation import check_int
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.genai.indexes.registry import IndexSpec

__all__ = [
    "BuiltVersion",
    "ChunkRecord",
    "IndexInfo",
    "IndexVersionInfo",
    "RetrievedChunk",
    "cache_vectors",
    "cached_vectors",
    "chunks",
    "get_index",
    "get_version",
    "index_row",
    "list_indexes",
    "mark_refreshed",
    "record_retrieval",
    "record_version",
    "retrievals_of",
    "version_info",
    "version_row",
    "versions",
]


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
class ChunkRecord:
    """A chunk of a new or changed document, as the store keeps it for reading back."""

    document_id: str
    chunk_id: str
    position: int
    start: int
    end: int
    text: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuiltVersion:
    """An index version built on the caller's side, its searchable file uploaded as ``blob``:
    what :func:`record_version` writes. ``after`` is the newest version it was built from (None
    for a first build); ``chunks`` are those of its new and changed documents; ``held`` the
    chunks an injection scan quarantined or flagged."""

    after: int | None
    content_id: str
    embedding_model: str
    chunker: dict[str, Any]
    blob: Blob
    documents: dict[str, str]
    media_types: dict[str, str]
    chunk_count: int
    chunks: list[ChunkRecord]
    stats: dict[str, Any]
    skipped: list[dict[str, str]] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    source_version_id: str | None = None


@operation("POST /indexes/{name}/versions")
def record_version(
    name: str,
    built: BuiltVersion,
    *,
    promote: bool = True,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> IndexVersionInfo:
    """Record an index version built on the caller's side, whose file the artifact store
    holds: its documents, the chunks of its new and changed documents, what a scan held back,
    lineage and audit, in one transaction; with ``promote`` searches read it from now on.

    A version built from another newest version than the one now stored is a Conflict (refresh
    again).
    """
    from cauce.artifacts.records import record_blob
    from cauce.genai.indexes import quarantine
    from cauce.genai.indexes.build import version_id as content_id

    ws = workspace or current()
    who = actor or ws.user
    _check_built(built)
    if content_id(built.documents, built.chunker, built.embedding_model) != built.content_id:
        raise InvalidInput(
            "built.content_id is not the id of its documents, chunker and embedding model",
            details={"field": "built.content_id"},
        )
    blob = built.blob
    if not ws.artifacts.exists(blob.sha256):
        raise NotFound(
            f"the index file {blob.sha256} of index {name!r} is not in the artifact store",
            hint="upload its content first",
        )
    blob = Blob(blob.sha256, blob.size, ws.artifacts.uri_of(blob.sha256), blob.media_type)
    now = now_ms()
    with ws.store.write() as conn:
        # Concurrent records of one index take turns on its row (PostgreSQL).
        row = conn.execute(select(indexes).where(indexes.c.name == name).with_for_update()).first()
        if row is None:
            raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
        previous = _newest_version(conn, row.id)
        if (previous.version if previous is not None else None) != built.after:
            raise Conflict(
                f"index {name!r} got version {previous.version if previous else None} while "
                f"this one was built from version {built.after}",
                hint=f"cauce indexes refresh {name}",
            )
        spec = _spec_of(row)
        record_blob(conn, blob)
        version_id = new_id()
        number = (previous.version if previous is not None else 0) + 1
        values = {
            "id": version_id,
            "index_id": row.id,
            "version": number,
            "content_id": built.content_id,
            "embedding_model": built.embedding_model,
            "chunker": built.chunker,
            "artifact_sha256": blob.sha256,
            "document_count": len(built.documents),
            "chunk_count": built.chunk_count,
            "stats": built.stats,
            "skipped": built.skipped,
            "created_at": now,
            "user": who,
        }
        conn.execute(index_versions.insert().values(**values))
        if built.documents:
            conn.execute(
                index_documents.insert(),
                [
                    {
                        "index_version_id": version_id,
                        "document_id": doc,
                        "sha256": sha,
                        "media_type": built.media_types.get(doc, "text/plain"),
                    }
                    for doc, sha in built.documents.items()
                ],
            )
        _store_chunks(conn, row.id, built)
        quarantine.record(conn, row.id, version_id, "indexing", built.held)
        for sha in sorted(set(built.documents.values())):
            add_edge(conn, ("document", sha), ("index_version", version_id), "indexed")
        if previous is not None:
            add_edge(conn, ("index_version", previous.id), ("index_version", version_id), "revised")
        moved = {"current_version_id": version_id} if promote else {}
        conn.execute(
            indexes.update()
            .where(indexes.c.id == row.id)
            .values(**moved, **_refreshed(spec, now, built.source_version_id))
        )
        audit.record(
            conn,
            who,
            "index.version.create",
            "index_version",
            version_id,
            after={
                "index": name,
                "version": number,
                "content_id": built.content_id,
                "current": promote,
                **built.stats.get("changes", {}),
            },
        )
        if promote:
            # Every move of the current version is one kind of event, whoever moved it.
            was = conn.execute(
                select(index_versions.c.version).where(
                    index_versions.c.id == row.current_version_id
                )
            ).scalar()
            audit.record(
                conn,
                who,
                "index.current.set",
                "index",
                row.id,
                before={"index": name, "version": was},
                after={"index": name, "version": number, "reason": "refreshed"},
            )
        return version_info(
            name,
            conn.execute(select(index_versions).where(index_versions.c.id == version_id)).one(),
        )


@operation("POST /indexes/{name}/refreshed", idempotent=True)
def mark_refreshed(
    name: str, *, source_version_id: str | None = None, workspace: Workspace | None = None
) -> None:
    """Record that a refresh found nothing new: the index is refreshed now (from the dataset
    version ``source_version_id``, for a dataset source), and its next refresh is set."""
    if source_version_id is not None and not isinstance(source_version_id, str):
        raise InvalidInput(
            "source_version_id: a dataset version's id", details={"field": "source_version_id"}
        )
    ws = workspace or current()
    with ws.store.write() as conn:
        row = conn.execute(select(indexes).where(indexes.c.name == name)).first()
        if row is None:
            raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
        spec = _spec_of(row)
        conn.execute(
            indexes.update()
            .where(indexes.c.id == row.id)
            .values(**_refreshed(spec, now_ms(), source_version_id))
        )


def _refreshed(spec: IndexSpec, now: int, source_version_id: str | None) -> dict[str, Any]:
    from cauce.genai.indexes.registry import next_refresh

    return {
        "refreshed_at": now,
        "next_refresh_at": next_refresh(spec, now, now),
        "source_version_id": source_version_id,
    }


_HELD_ACTIONS = ("quarantined", "flagged")


def _check_built(built: BuiltVersion) -> None:
    for where, value in (
        ("built.content_id", built.content_id),
        ("built.blob.sha256", built.blob.sha256),
    ):
        if len(value) != 64 or not set(value) <= set("0123456789abcdef"):
            raise InvalidInput(f"{where}: a sha256 (64 hex characters)", details={"field": where})
    if built.chunk_count < len(built.chunks) or built.chunk_count >= 2**31:
        raise InvalidInput(
            "built.chunk_count: at least as many as built.chunks",
            details={"field": "built.chunk_count"},
        )
    if not 0 < len(built.embedding_model) <= 255:
        raise InvalidInput(
            "built.embedding_model: 1 to 255 characters",
            details={"field": "built.embedding_model"},
        )
    for index, chunk in enumerate(built.chunks):
        if chunk.document_id not in built.documents:
            where = f"built.chunks.{index}.document_id"
            raise InvalidInput(
                f"{where}: {chunk.document_id!r} is not one of built.documents",
                details={"field": where},
            )
    for index, held in enumerate(built.held):
        if held[5] not in _HELD_ACTIONS:
            where = f"built.held.{index}.5"
            raise InvalidInput(
                f"{where}: one of {', '.join(_HELD_ACTIONS)}, not {held[5]!r}",
                details={"field": where},
            )


def _newest_version(conn: Connection, index_id: str) -> Any:
    return conn.execute(
        select(index_versions)
        .where(index_versions.c.index_id == index_id)
        .order_by(index_versions.c.version.desc())
        .limit(1)
    ).first()


def _store_chunks(conn: Connection, index_id: str, built: BuiltVersion) -> None:
    """The chunks of the version's new and changed documents, with their text and metadata;
    those of unchanged documents are here already (one row per chunker, document content and
    chunk)."""
    from cauce.genai.indexes.chunk import settings_key

    key = settings_key(built.chunker)
    rows = [
        {
            "index_id": index_id,
            "id": hashlib.sha256(
                f"{key}|{built.documents[c.document_id]}|{c.chunk_id}".encode()
            ).hexdigest(),
            "chunker_key": key,
            "document_id": c.document_id,
            "document_sha256": built.documents[c.document_id],
            "chunk_id": c.chunk_id,
            "position": c.position,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "sha256": c.sha256,
            "metadata": c.metadata,
        }
        for c in built.chunks
    ]
    for start in range(0, len(rows), 500):
        conn.execute(
            dialect_insert(conn, index_chunks)
            .values(rows[start : start + 500])
            .on_conflict_do_nothing()
        )


@operation("GET /indexes/{name}/chunks")
def chunks(
    name: str, *, version: int | None = None, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """The chunks of an index version (the current one by default) as the store keeps them:
    document, position, offsets, text and metadata, by document and position."""
    from cauce.genai.indexes.chunk import settings_key

    ws = workspace or current()
    c, d = index_chunks.c, index_documents.c
    with ws.store.read() as conn:
        row = index_row(conn, name)
        found = version_row(conn, row, name, version)
        key = settings_key(found.chunker)
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


@operation("POST /embeddings/lookup", role="viewer", idempotent=True)
def cached_vectors(
    model_id: str, hashes: list[str], *, workspace: Workspace | None = None
) -> dict[str, str]:
    """The cached vectors of model ``model_id`` for the texts whose sha256 are ``hashes``:
    sha256 -> the vector's float32 bytes, base64 (a text not cached is left out)."""
    ws = workspace or current()
    found: dict[str, str] = {}
    with ws.store.read() as conn:
        for start in range(0, len(hashes), 500):
            rows = conn.execute(
                select(embeddings.c.sha256, embeddings.c.vector).where(
                    embeddings.c.model_id == model_id,
                    embeddings.c.sha256.in_(hashes[start : start + 500]),
                )
            )
            for sha, vector in rows:
                found[sha] = base64.b64encode(bytes(vector)).decode()
    return found


_SHA256 = re.compile(r"[0-9a-f]{64}")


@operation("POST /embeddings", idempotent=True)
def cache_vectors(
    model_id: str, vectors: dict[str, str], *, workspace: Workspace | None = None
) -> None:
    """Keep vectors of model ``model_id`` (sha256 of the text -> float32 bytes, base64); a text
    already cached keeps its first vector."""
    if not isinstance(model_id, str) or not 0 < len(model_id) <= 255:
        raise InvalidInput("model_id: 1 to 255 characters", details={"field": "model_id"})
    rows = []
    for sha, text in vectors.items():
        try:
            vector = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):  # not base64, not ASCII, not text
            vector = b""
        if not _SHA256.fullmatch(sha) or not vector or len(vector) % 4:
            raise InvalidInput(
                f"vectors.{sha}: a text's sha256 and its vector's float32 bytes in base64",
                details={"field": f"vectors.{sha}"},
            )
        rows.append({"model_id": model_id, "sha256": sha, "vector": vector})
    if not rows:
        return
    ws = workspace or current()
    with ws.store.write() as conn:
        for start in range(0, len(rows), 500):
            conn.execute(
                dialect_insert(conn, embeddings)
                .values(rows[start : start + 500])
                .on_conflict_do_nothing()
            )


@dataclass(frozen=True)
class RetrievedChunk:
    """One hit of a recorded retrieval."""

    chunk_id: str
    document_id: str
    score: float


@operation("POST /indexes/{name}/retrievals")
def record_retrieval(
    name: str,
    version: int,
    query_sha256: str,
    mode: str,
    k: int,
    hits: list[RetrievedChunk],
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    held: list[Held] | None = None,
    workspace: Workspace | None = None,
) -> None:
    """Record a search of a version of the index: its hits in rank order, the trace it was
    made in, and the hits a scan dropped or flagged, in one transaction."""
    from cauce.genai.indexes import quarantine
    from cauce.genai.indexes.search import MODES

    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}", details={"field": "mode"})
    check_int(version, "version")
    check_int(k, "k")
    for field_name, value, size in (
        ("query_sha256", query_sha256, 64),
        ("trace_id", trace_id, 32),
        ("span_id", span_id, 16),
    ):
        if (value is not None or field_name == "query_sha256") and (
            not isinstance(value, str) or len(value) != size or not set(value) <= _HEX
        ):
            raise InvalidInput(
                f"{field_name}: {size} lowercase hex characters", details={"field": field_name}
            )
    if not 0 <= k < 2**31:
        raise InvalidInput("k: a count of hits", details={"field": "k"})
    for index, one in enumerate(held or []):
        if one[5] not in ("dropped", "flagged"):
            where = f"held.{index}.5"
            raise InvalidInput(
                f"{where}: dropped or flagged, not {one[5]!r}", details={"field": where}
            )
    ws = workspace or current()
    retrieval_id = new_id()
    with ws.store.write() as conn:
        row = index_row(conn, name)
        found = version_row(conn, row, name, version)
        quarantine.record(conn, row.id, found.id, "retrieval", held or [])
        conn.execute(
            retrievals.insert().values(
                id=retrieval_id,
                index_version_id=found.id,
                query_sha256=query_sha256,
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
        if trace_id is not None:
            add_edge(conn, ("index_version", found.id), ("trace", trace_id), "retrieved")


_HEX = frozenset("0123456789abcdef")


@operation("GET /retrievals")
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


@operation("GET /indexes")
def list_indexes(*, workspace: Workspace | None = None) -> list[IndexInfo]:
    """Every index, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _infos(conn)


@operation("GET /indexes/{name}")
def get_index(name: str, *, workspace: Workspace | None = None) -> IndexInfo:
    """One index."""
    ws = workspace or current()
    with ws.store.read() as conn:
        found = _infos(conn, name)
    if not found:
        raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
    return found[0]


def _infos(conn: Connection, name: str | None = None) -> list[IndexInfo]:
    current_version = index_versions.c.version.label("current_version")
    query_ = (
        select(indexes, current_version)
        .outerjoin(index_versions, index_versions.c.id == indexes.c.current_version_id)
        .order_by(indexes.c.name)
    )
    if name is not None:
        query_ = query_.where(indexes.c.name == name)
    return [
        IndexInfo(
            r.name,
            r.id,
            dict(r.spec),
            r.current_version,
            r.refreshed_at,
            r.next_refresh_at,
        )
        for r in conn.execute(query_).all()
    ]


@operation("GET /indexes/{name}/versions")
def versions(name: str, *, workspace: Workspace | None = None) -> list[IndexVersionInfo]:
    """Every version of an index, oldest first."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = index_row(conn, name)
        found = conn.execute(
            select(index_versions)
            .where(index_versions.c.index_id == row.id)
            .order_by(index_versions.c.version)
        ).all()
    return [version_info(name, r) for r in found]


@operation("GET /indexes/{name}/version")
def get_version(
    name: str, version: int | None = None, *, workspace: Workspace | None = None
) -> IndexVersionInfo:
    """A version of an index: the current one (the one searches read) by default."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = index_row(conn, name)
        return version_info(name, version_row(conn, row, name, version))


def index_row(conn: Connection, name: str) -> Any:
    """The stored row of index ``name``, in the caller's transaction; NotFound otherwise."""
    row = conn.execute(select(indexes).where(indexes.c.name == name)).first()
    if row is None:
        raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
    return row


def version_row(conn: Connection, row: Any, name: str, number: int | None) -> Any:
    """The row of version ``number`` of the index whose row is ``row`` (None: the current one)."""
    if number is not None:
        check_int(number, "index version")
    if number is None:
        if row.current_version_id is None:
            raise NotFound(
                f"index {name!r} has no version yet", hint=f"cauce indexes refresh {name}"
            )
        return conn.execute(
            select(index_versions).where(index_versions.c.id == row.current_version_id)
        ).one()
    found = conn.execute(
        select(index_versions).where(
            index_versions.c.index_id == row.id, index_versions.c.version == number
        )
    ).first()
    if found is None:
        raise NotFound(f"index {name!r} has no version {number}")
    return found


def version_info(name: str, row: Any) -> IndexVersionInfo:
    """A version's row as the SDK answers it."""
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


def _spec_of(row: Any) -> IndexSpec:
    from cauce.genai.indexes.registry import IndexSpec

    return IndexSpec.model_validate({"kind": "Index", **row.spec})
