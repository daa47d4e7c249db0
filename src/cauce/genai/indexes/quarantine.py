"""Indirect prompt injection: index chunks scanned when they are indexed and when retrieved.

A document can carry instructions meant for the model that will read it ("ignore your rules
and ..."). An index's ``injection`` setting scans each new chunk with
:func:`cauce.genai.safety.injection.detect_injection` before it is embedded: a flagged chunk is
quarantined (never embedded, never searchable) or, with ``action: flag``, kept and recorded.
Retrieved chunks are scanned again (the rules or the threshold may have changed since the
build, or the index was built without scanning): a flagged hit is dropped from the results, or
kept and recorded. Every such chunk is a row of ``index_quarantine``; ``cauce indexes
quarantine NAME`` lists them.

Example::

    cauce.apply({"kind": "Index", "name": "docs", "source": {"path": "docs/"},
                 "injection": {"scan": True, "action": "quarantine", "threshold": 0.5}})
    cauce.indexes.refresh("docs")
    cauce.indexes.quarantined("docs")
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from cauce.operations import operation
from cauce.store import now_ms
from cauce.store.schema import index_quarantine, index_versions, indexes
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.genai.indexes.chunk import Chunk
    from cauce.genai.indexes.search import Hit

__all__ = [
    "Held",
    "InjectionScan",
    "quarantined",
    "record",
    "scan",
    "screen_chunks",
    "screen_hits",
]


class InjectionScan(BaseModel):
    """An index's injection scan: on by default, flagged chunks quarantined. The threshold is
    higher than the gateway's 0.5: documentation about prompts is benign text that looks like
    an attack (of 551 paragraphs of Cauce's own docs, 6 score 0.50-0.67; only one that quotes
    an attack reaches 0.7)."""

    model_config = ConfigDict(extra="forbid")

    scan: bool = True
    action: Literal["quarantine", "flag"] = "quarantine"
    threshold: float = Field(default=0.7, ge=0.0, le=1.0)


# (document id, chunk id, text, reasons, score, action)
Held = tuple[str, str, str, list[str], float, str]

_cache: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 20_000


def scan(text: str) -> tuple[float, list[str]]:
    """The injection score of a chunk's text and why (rule names or ``classifier``), cached by
    the text's sha256: a chunk retrieved again is not scanned again."""
    from cauce.genai.safety.injection import detect_injection

    key = hashlib.sha256(text.encode()).hexdigest()
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    result = detect_injection(text)
    reasons = list(result.rules) or (["classifier"] if result.layer else [])
    reasons += [f"payload:{kind}" for kind in result.payloads]
    found = (result.score, reasons)
    with _cache_lock:
        _cache[key] = found
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def screen_chunks(settings: InjectionScan, held: list[Held]) -> Any:
    """A screen for :func:`~cauce.genai.indexes.build.build_index`: keeps the chunks that pass
    (and, with ``action: flag``, the flagged ones too), appending every flagged one to
    ``held``."""

    def screen(chunks: list[Chunk]) -> list[Chunk]:
        kept = []
        for chunk in chunks:
            score, reasons = scan(chunk.text)
            if score < settings.threshold:
                kept.append(chunk)
                continue
            action = "quarantined" if settings.action == "quarantine" else "flagged"
            held.append((chunk.document_id, chunk.id, chunk.text, reasons, score, action))
            if settings.action == "flag":
                kept.append(chunk)
        return kept

    return screen


def screen_hits(settings: InjectionScan, hits: list[Hit]) -> tuple[list[Hit], list[Held]]:
    """``hits`` without the flagged ones (``action: quarantine``), and every flagged hit, to be
    recorded with the retrieval."""
    kept, held = [], []
    for hit in hits:
        score, reasons = scan(hit.text)
        if score < settings.threshold:
            kept.append(hit)
            continue
        action = "dropped" if settings.action == "quarantine" else "flagged"
        held.append((hit.document_id, hit.chunk_id, hit.text, reasons, score, action))
        if settings.action == "flag":
            kept.append(hit)
    return kept, held


def record(
    conn: Connection, index_id: str, version_id: str | None, stage: str, held: list[Held]
) -> None:
    """One ``index_quarantine`` row per held chunk, in the caller's transaction."""
    if not held:
        return
    now = now_ms()
    conn.execute(
        index_quarantine.insert(),
        [
            {
                "index_id": index_id,
                "index_version_id": version_id,
                "stage": stage,
                "action": action,
                "document_id": document,
                "chunk_id": chunk,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "text": text,
                "reasons": reasons,
                "score": float(score),
                "created_at": now,
            }
            for document, chunk, text, reasons, score, action in held
        ],
    )


@operation("GET /indexes/{name}/quarantine")
def quarantined(
    name: str, *, stage: str | None = None, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """The chunks of an index held back or flagged by a scan, newest first (``stage``:
    ``indexing`` or ``retrieval`` only)."""
    from cauce.errors import InvalidInput, NotFound

    if stage not in (None, "indexing", "retrieval"):
        raise InvalidInput(
            f"stage must be indexing or retrieval, not {stage!r}", details={"field": "stage"}
        )
    ws = workspace or current()
    q = index_quarantine.c
    with ws.store.read() as conn:
        index_id = conn.execute(select(indexes.c.id).where(indexes.c.name == name)).scalar()
        if index_id is None:
            raise NotFound(f"no index named {name!r}", hint="cauce indexes list shows them")
        query = (
            select(index_quarantine, index_versions.c.version)
            .outerjoin(index_versions, index_versions.c.id == q.index_version_id)
            .where(q.index_id == index_id)
            .order_by(q.created_at.desc(), q.id.desc())
        )
        if stage is not None:
            query = query.where(q.stage == stage)
        rows = conn.execute(query).all()
    return [
        {
            "stage": r.stage,
            "action": r.action,
            "version": r.version,
            "document_id": r.document_id,
            "chunk_id": r.chunk_id,
            "score": r.score,
            "reasons": list(r.reasons),
            "text": r.text,
            "at": r.created_at,
        }
        for r in rows
    ]
