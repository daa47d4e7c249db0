"""Index versions: the id, a full build, and a refresh that embeds only new and changed
documents."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from indexes_helpers import RecordingEmbedder, make_pdf

from cauce.errors import AlreadyExists
from cauce.genai.indexes import (
    MarkdownChunker,
    MemoryCache,
    MiniLMEmbedder,
    SearchIndex,
    SqliteCache,
    TokenChunker,
    build_index,
    diff_documents,
    read_folder,
    refresh_index,
    version_id,
)

TOPICS = [
    "rollback",
    "canary",
    "drift",
    "gate",
    "lineage",
    "alert",
    "monitor",
    "traffic",
    "endpoint",
    "dataset",
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    return embedder


def _write_corpus(root: Path, count: int = 12) -> None:
    rng = random.Random(5)
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        words = " ".join(rng.choice(TOPICS) for _ in range(150))
        (root / f"doc{i:02d}.md").write_text(f"# About {topic}\n\n## Details\n\n{words}\n")
    (root / "manual.pdf").write_bytes(make_pdf(["The manual explains promotion gates."]))
    (root / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")


def test_the_version_id_depends_on_documents_settings_and_model_only() -> None:
    settings = {"method": "tokens", "size": 200, "overlap": 40}
    base = version_id({"a": "1", "b": "2"}, settings, "m@1")
    assert base == version_id({"b": "2", "a": "1"}, dict(reversed(settings.items())), "m@1")
    assert len(base) == 64
    others = [
        version_id({"a": "1", "b": "3"}, settings, "m@1"),
        version_id({"a": "1"}, settings, "m@1"),
        version_id({"a": "1", "c": "2"}, settings, "m@1"),
        version_id({"a": "1", "b": "2"}, {**settings, "size": 100}, "m@1"),
        version_id({"a": "1", "b": "2"}, settings, "m@2"),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_a_build_indexes_every_parsed_document(minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    _write_corpus(tmp_path)
    parsed = read_folder(tmp_path)
    assert [s.id for s in parsed.skipped] == ["broken.pdf"]
    chunker = MarkdownChunker(size=120, overlap=20)
    version = build_index(parsed.documents, chunker, minilm, MemoryCache())

    assert version.id == version_id(parsed.hashes(), chunker.settings(), minilm.model_id)
    assert version.documents == parsed.hashes()
    assert version.changes.new == sorted(parsed.hashes())
    assert version.reused_chunks == 0 and version.cached == 0
    assert version.embedded == len({c.sha256 for c in version.index.chunks})
    assert {c.document_id for c in version.index.chunks} == set(parsed.hashes())
    assert version.index.chunker == chunker.settings()
    assert set(version.seconds) == {"chunk", "embed", "index"}
    [hit] = version.index.search(
        "promotion gates manual", minilm, k=1, where={"path": "manual.pdf"}
    )
    assert hit.document_id == "manual.pdf"


def test_a_refresh_embeds_only_new_and_changed_documents(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    _write_corpus(tmp_path)
    chunker = MarkdownChunker(size=120, overlap=20)
    first = build_index(read_folder(tmp_path).documents, chunker, minilm)
    saved = first.index.save(tmp_path.parent / f"{tmp_path.name}-v1.cauce")

    (tmp_path / "doc03.md").write_text("# About gates\n\nA changed document about quality gates.\n")
    (tmp_path / "doc07.md").unlink()
    (tmp_path / "new.txt").write_text("A new document about shadow traffic mirroring.")
    (tmp_path / "doc05.md").touch()  # a newer mtime, same bytes: unchanged
    parsed = read_folder(tmp_path)
    recorder = RecordingEmbedder(minilm)
    second = refresh_index(SearchIndex.load(saved), parsed.documents, chunker, recorder)

    assert second.changes.to_dict() == {
        "new": ["new.txt"],
        "changed": ["doc03.md"],
        "deleted": ["doc07.md"],
        "unchanged": sorted(set(first.documents) - {"doc03.md", "doc07.md"}),
    }
    fresh = [c for c in second.index.chunks if c.document_id in ("new.txt", "doc03.md")]
    # the embedder saw the new and changed documents' chunks and nothing else
    assert sorted(recorder.texts) == sorted(c.text for c in fresh)
    assert second.embedded == len(fresh)
    old = {c.id: first.index.row(c.id) for c in first.index.chunks}
    kept = [c for c in second.index.chunks if c.id in old]
    assert second.reused_chunks == len(kept) == len(second.index) - len(fresh)
    assert {c.document_id for c in kept} == set(second.changes.unchanged)
    for chunk in kept:
        np.testing.assert_array_equal(
            second.index.vectors[second.index.row(chunk.id)], first.index.vectors[old[chunk.id]]
        )
    assert "doc07.md" not in {c.document_id for c in second.index.chunks}
    doc05 = next(c for c in kept if c.document_id == "doc05.md")
    assert doc05.metadata["modified"] == next(
        d.metadata["modified"] for d in parsed.documents if d.id == "doc05.md"
    )
    [hit] = second.index.search("shadow traffic mirroring", minilm, k=1)
    assert hit.document_id == "new.txt"

    # the refreshed version is the version a full build of the same documents gives
    full = build_index(parsed.documents, chunker, minilm)
    assert second.id == full.id
    assert [c.id for c in second.index.chunks] == [c.id for c in full.index.chunks]
    np.testing.assert_allclose(second.index.vectors, full.index.vectors, atol=1e-5)

    # nothing changed: nothing embedded, same version
    recorder.texts.clear()
    third = refresh_index(second.index, parsed.documents, chunker, recorder)
    assert recorder.texts == [] and third.id == second.id and third.embedded == 0


def test_new_chunker_settings_rechunk_everything_and_the_cache_spares_known_texts(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    _write_corpus(tmp_path, count=4)
    documents = read_folder(tmp_path).documents
    cache = SqliteCache(tmp_path.parent / f"{tmp_path.name}-cache.db")
    first = build_index(documents, TokenChunker(size=200, overlap=40), minilm, cache)
    recorder = RecordingEmbedder(minilm)
    # the PDF's single short chunk has the same text under both settings: it comes from the cache
    second = refresh_index(
        first.index, documents, TokenChunker(size=100, overlap=0), recorder, cache
    )
    assert second.reused_chunks == 0 and second.id != first.id
    assert second.changes.unchanged == sorted(first.documents)
    pdf_text = next(c.text for c in first.index.chunks if c.document_id == "manual.pdf")
    assert pdf_text not in recorder.texts and second.cached >= 1
    assert len(recorder.texts) == second.embedded == len(second.index) - second.cached
    cache.close()


def test_documents_with_the_same_id_are_refused(minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    _write_corpus(tmp_path, count=2)
    documents = read_folder(tmp_path).documents
    with pytest.raises(AlreadyExists, match="appears twice"):
        build_index([*documents, documents[0]], TokenChunker(), minilm)
    with pytest.raises(AlreadyExists):
        diff_documents({}, [documents[0], documents[0]])
