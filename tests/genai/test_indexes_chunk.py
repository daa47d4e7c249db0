"""Chunking by tokens (the embedding model's own wordpieces) and by Markdown headings."""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest

from cauce.errors import InvalidInput
from cauce.genai.indexes import (
    MarkdownChunker,
    TokenChunker,
    chunker_from_settings,
    minilm_id,
)
from cauce.genai.indexes.chunk import MAX_SIZE, minilm_tokenizer
from cauce.genai.indexes.parse import Document, parse_document

WORDS = [
    "rollback",
    "canary",
    "deployment",
    "endpoint",
    "traffic",
    "monitor",
    "drift",
    "alert",
    "gate",
    "lineage",
    "unbelievably",
    "tokenization",
    "hyperparameter",
    "the",
    "a",
    "of",
    "to",
    "and,",
    "(parenthesis)",
    "3.14",
    "café",
    "naïve",
]


def _text(words: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(words):
        out.append(rng.choice(WORDS))
        if i % 17 == 16:
            out.append(".\n\n" if i % 3 else ".")
    return " ".join(out)


def _tokens(text: str) -> int:
    return len(minilm_tokenizer().encode(text, add_special_tokens=False).ids)


def _doc(doc_id: str, text: str, media_type: str = "text/plain") -> Document:
    return parse_document(doc_id, text.encode(), media_type, {"path": doc_id})


def test_token_windows_fit_overlap_cover_the_text_and_never_cut_a_word() -> None:
    doc = _doc("long.txt", _text(1500))
    chunks = TokenChunker(size=64, overlap=16).split([doc])

    assert len(chunks) > 10
    assert [c.position for c in chunks] == list(range(len(chunks)))
    covered = [False] * len(doc.text)
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.sha256 == hashlib.sha256(chunk.text.encode()).hexdigest()
        assert chunk.document_id == "long.txt"
        assert chunk.metadata == {"path": "long.txt", "media_type": "text/plain"}
        assert _tokens(chunk.text) <= 64
        # a window starts and ends between words
        assert chunk.start == 0 or not doc.text[chunk.start - 1].isalnum()
        assert chunk.end == len(doc.text) or not doc.text[chunk.end].isalnum()
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(doc.text) if not ch.isspace())
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # neighbours share text
        shared = doc.text[after.start : before.end]
        assert 10 <= _tokens(shared) <= 24  # about `overlap` tokens, moved to word boundaries


def test_windows_fill_the_models_window_without_being_truncated_by_it() -> None:
    doc = _doc("long.txt", _text(3000, seed=2))
    chunks = TokenChunker(size=MAX_SIZE, overlap=0).split([doc])
    assert max(_tokens(c.text) for c in chunks) > MAX_SIZE - 8
    # [CLS] + the chunk + [SEP] fit the model's 256 wordpieces
    assert all(_tokens(c.text) + 2 <= 256 for c in chunks)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))  # no overlap


def test_a_short_document_is_one_chunk_and_an_empty_list_gives_none() -> None:
    doc = _doc("short.txt", "  One sentence about gates.  ")
    [chunk] = TokenChunker().split([doc])
    assert chunk.text == "One sentence about gates."
    assert TokenChunker().split([]) == []


MARKDOWN = """Preamble before any heading.

# Guide

## Install

Run pip install cauce.

```bash
# not a heading, a shell comment
pip install cauce
```

### From source ###

Clone the repository.

## Use

{long}

# Reference
## Empty
## Flags
--fast runs less data.
"""


def test_markdown_chunks_carry_their_heading_path_and_long_sections_are_split() -> None:
    long = _text(600, seed=3).replace("\n\n", " ")
    doc = _doc("guide.md", MARKDOWN.format(long=long), "text/markdown")
    chunks = MarkdownChunker(size=100, overlap=20).split([doc])
    paths = [tuple(c.metadata["headings"]) for c in chunks]

    assert paths[0] == ()
    assert chunks[0].text == "Preamble before any heading."
    assert paths[1] == ("Guide", "Install")
    assert "# not a heading, a shell comment" in chunks[1].text
    assert paths[2] == ("Guide", "Install", "From source")
    use = [c for c in chunks if c.metadata["headings"] == ["Guide", "Use"]]
    assert len(use) >= 5
    assert all(_tokens(c.text) <= 100 for c in use)
    assert use[0].text.startswith("## Use")
    assert paths[-1] == ("Reference", "Flags")
    assert chunks[-1].text == "## Flags\n--fast runs less data.\n".strip()
    # a heading followed directly by its first subheading makes no chunk of its own
    assert ("Guide",) not in paths and ("Reference", "Empty") not in paths
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]


def test_the_markdown_chunker_splits_other_documents_by_tokens_without_headings() -> None:
    doc = _doc("plain.txt", "# not markdown\n\n" + _text(400))
    chunks = MarkdownChunker(size=120, overlap=10).split([doc])
    assert len(chunks) > 1
    assert all("headings" not in c.metadata for c in chunks)


def test_settings_are_canonical_and_rebuild_the_chunker() -> None:
    settings = MarkdownChunker(size=128, overlap=32).settings()
    assert settings == {
        "method": "markdown",
        "size": 128,
        "overlap": 32,
        "tokenizer": minilm_id(),
        "version": 1,
    }
    rebuilt = chunker_from_settings(settings)
    assert isinstance(rebuilt, MarkdownChunker) and rebuilt.settings() == settings
    assert chunker_from_settings({"method": "tokens"}).settings()["size"] == 200
    with pytest.raises(InvalidInput, match="tokenizer"):
        chunker_from_settings({**settings, "tokenizer": "bert-base-uncased"})
    with pytest.raises(InvalidInput, match="unknown chunking method 'sentences'"):
        chunker_from_settings({"method": "sentences"})
    with pytest.raises(InvalidInput, match="unknown chunker setting"):
        chunker_from_settings({**settings, "separator": "\n"})


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [(0, 0, "size"), (255, 10, "between 1 and 254"), (100, 100, "overlap"), (50, -1, "overlap")],
)
def test_impossible_sizes_are_refused(size: int, overlap: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        TokenChunker(size=size, overlap=overlap)


def test_chunk_ids_are_stable_and_follow_the_document_and_settings() -> None:
    text = _text(500)
    first = TokenChunker(size=80, overlap=10).split([_doc("a.txt", text)])
    again = TokenChunker(size=80, overlap=10).split([_doc("a.txt", text)])
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    other_doc = TokenChunker(size=80, overlap=10).split([_doc("b.txt", text)])
    other_text = TokenChunker(size=80, overlap=10).split([_doc("a.txt", text + " more")])
    other_size = TokenChunker(size=81, overlap=10).split([_doc("a.txt", text)])
    for other in (other_doc, other_text, other_size):
        assert not {c.id for c in first} & {c.id for c in other}
