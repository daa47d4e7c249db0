"""Chunking: documents cut into pieces that fit the embedding model's window.

Two chunkers, both counting wordpieces with the embedding model's own tokenizer (the fast
``tokenizers`` tokenizer packaged with all-MiniLM-L6-v2), so a chunk of ``size`` tokens is
embedded whole (the model reads 256 wordpieces, two of them [CLS] and [SEP]):

- :class:`TokenChunker`: windows of ``size`` tokens, each starting ``size - overlap`` tokens
  after the previous one. A window never ends or starts inside a word unless the word alone is
  longer than the window.
- :class:`MarkdownChunker`: one chunk per Markdown section (ATX headings, ``#`` to ``######``,
  outside fenced code), carrying its heading path (``["Guide", "Install"]``) in its metadata; a
  section longer than ``size`` tokens is split like :class:`TokenChunker` does. A document that
  is not Markdown is one section without headings.

A chunker's :meth:`settings` are a canonical dict; they are part of an index version's
identity, and :func:`chunker_from_settings` rebuilds the chunker from them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cauce.errors import InvalidInput
from cauce.genai.indexes.embed import MINILM_WINDOW, minilm_dir, minilm_id
from cauce.genai.indexes.parse import Document

# Bump when the same settings would cut the same text differently: old chunks stop matching.
CHUNKING_VERSION = 1
MAX_SIZE = MINILM_WINDOW - 2  # [CLS] and [SEP] take two places of the window


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text`` is ``document.text[start:end]``."""

    id: str
    document_id: str
    position: int
    text: str
    sha256: str
    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The chunk as plain JSON-able values."""
        return {
            "id": self.id,
            "document_id": self.document_id,
            "position": self.position,
            "text": self.text,
            "sha256": self.sha256,
            "start": self.start,
            "end": self.end,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Chunk:
        """A chunk from :meth:`to_dict`'s output."""
        return cls(**{key: row[key] for key in cls.__dataclass_fields__})


class Chunker(Protocol):
    """Cuts documents into chunks."""

    def settings(self) -> dict[str, Any]:
        """The canonical settings: same settings, same chunks."""
        ...

    def split(self, documents: Sequence[Document]) -> list[Chunk]:
        """The chunks of every document, in document order then position."""
        ...


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def settings_key(settings: Mapping[str, Any]) -> str:
    """A short hash of canonical settings."""
    return hashlib.sha256(canonical_json(dict(settings)).encode()).hexdigest()[:16]


@functools.cache
def minilm_tokenizer() -> Any:
    """The fast wordpiece tokenizer of the packaged MiniLM, without truncation or padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _check_sizes(size: int, overlap: int) -> None:
    if not 1 <= size <= MAX_SIZE:
        raise InvalidInput(
            f"chunk size must be between 1 and {MAX_SIZE} tokens, not {size}",
            hint=f"all-MiniLM-L6-v2 reads {MINILM_WINDOW} wordpieces, [CLS] and [SEP] included",
        )
    if not 0 <= overlap < size:
        raise InvalidInput(
            f"chunk overlap must be at least 0 and less than the size ({size}), not {overlap}"
        )


class TokenChunker:
    """Windows of ``size`` tokens overlapping by ``overlap`` tokens."""

    method = "tokens"

    def __init__(self, size: int = 200, overlap: int = 40) -> None:
        _check_sizes(size, overlap)
        self.size = size
        self.overlap = overlap

    def settings(self) -> dict[str, Any]:
        """``method``, ``size``, ``overlap``, ``tokenizer`` and ``version``."""
        return {
            "method": self.method,
            "size": self.size,
            "overlap": self.overlap,
            "tokenizer": minilm_id(),
            "version": CHUNKING_VERSION,
        }

    def split(self, documents: Sequence[Document]) -> list[Chunk]:
        """The chunks of every document, in document order then position."""
        sections = [(doc, [_Section(0, len(doc.text), None)]) for doc in documents]
        return _chunk_sections(sections, self.size, self.overlap, settings_key(self.settings()))


class MarkdownChunker(TokenChunker):
    """A chunk per Markdown section with its heading path; long sections split by tokens."""

    method = "markdown"

    def split(self, documents: Sequence[Document]) -> list[Chunk]:
        """The chunks of every document, in document order then position."""
        sections = []
        for doc in documents:
            if doc.media_type == "text/markdown":
                sections.append((doc, markdown_sections(doc.text)))
            else:
                sections.append((doc, [_Section(0, len(doc.text), None)]))
        return _chunk_sections(sections, self.size, self.overlap, settings_key(self.settings()))


CHUNKERS: dict[str, type[TokenChunker]] = {"tokens": TokenChunker, "markdown": MarkdownChunker}


def chunker_from_settings(settings: Mapping[str, Any]) -> TokenChunker:
    """The chunker that :meth:`TokenChunker.settings` describes; InvalidInput when these
    settings cannot be reproduced here (unknown method, other tokenizer or version)."""
    method = settings.get("method")
    if method not in CHUNKERS:
        raise InvalidInput(
            f"unknown chunking method {method!r}", hint=f"use one of {', '.join(CHUNKERS)}"
        )
    unknown = set(settings) - {"method", "size", "overlap", "tokenizer", "version"}
    if unknown:
        raise InvalidInput(f"unknown chunker setting(s): {', '.join(sorted(unknown))}")
    chunker = CHUNKERS[method](
        size=int(settings.get("size", 200)), overlap=int(settings.get("overlap", 40))
    )
    for key in ("tokenizer", "version"):
        if key in settings and settings[key] != chunker.settings()[key]:
            raise InvalidInput(
                f"chunker {key} {settings[key]!r} is not this installation's "
                f"({chunker.settings()[key]!r})",
                hint="rebuild the index (its chunks would not be reproduced)",
            )
    return chunker


# -- sections and windows ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    """Characters ``start:end`` of a document, under ``headings`` (None: not Markdown)."""

    start: int
    end: int
    headings: list[str] | None


_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_sections(text: str) -> list[_Section]:
    """The sections of a Markdown text: each starts at a heading line (the first may start
    before any heading) and carries the path of headings above it."""
    sections: list[_Section] = []
    path: list[tuple[int, str]] = []
    start, headings = 0, list[str]()
    fence: str | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        fenced = _FENCE.match(line)
        if fence is not None:
            if fenced and fenced.group(1)[0] == fence[0] and len(fenced.group(1)) >= len(fence):
                fence = None
        elif fenced:
            fence = fenced.group(1)
        else:
            heading = _HEADING.match(line.rstrip("\n"))
            if heading:
                if offset > start:
                    sections.append(_Section(start, offset, headings))
                level = len(heading.group(1))
                title = _CLOSING_HASHES.sub("", (heading.group(2) or "")).strip()
                path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
                start, headings = offset, [t for _, t in path]
        offset += len(line)
    if offset > start:
        sections.append(_Section(start, offset, headings))
    return sections


def _chunk_sections(
    documents: Sequence[tuple[Document, list[_Section]]], size: int, overlap: int, key: str
) -> list[Chunk]:
    """Token windows over every section of every document (tokenised in one batch)."""
    tokenizer = minilm_tokenizer()
    flat = [(doc, sec) for doc, secs in documents for sec in secs]
    encodings = tokenizer.encode_batch(
        [doc.text[sec.start : sec.end] for doc, sec in flat], add_special_tokens=False
    )
    chunks: list[Chunk] = []
    position: dict[str, int] = {}
    for (doc, sec), encoding in zip(flat, encodings, strict=True):
        spans = _windows(encoding.offsets, encoding.word_ids, size, overlap)
        if sec.headings is not None and len(spans) == 1 and _only_heading(doc.text, sec):
            continue  # a heading directly followed by its first subheading: no content
        for begin, end in spans:
            start, stop = sec.start + begin, sec.start + end
            text = doc.text[start:stop]
            n = position.get(doc.id, 0)
            position[doc.id] = n + 1
            metadata = {**doc.metadata, "media_type": doc.media_type}
            if sec.headings is not None:
                metadata["headings"] = list(sec.headings)
            chunk_id = hashlib.sha256(
                canonical_json([doc.id, doc.sha256, key, n]).encode()
            ).hexdigest()[:32]
            chunks.append(
                Chunk(
                    id=chunk_id,
                    document_id=doc.id,
                    position=n,
                    text=text,
                    sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    start=start,
                    end=stop,
                    metadata=metadata,
                )
            )
    return chunks


def _only_heading(text: str, section: _Section) -> bool:
    """Whether a Markdown section holds nothing but its heading line."""
    body = text[section.start : section.end]
    first, _, rest = body.partition("\n")
    return bool(_HEADING.match(first)) and not rest.strip()


def _windows(
    offsets: Sequence[tuple[int, int]], words: Sequence[int | None], size: int, overlap: int
) -> list[tuple[int, int]]:
    """Character spans of windows of at most ``size`` tokens, ``overlap`` tokens shared by
    neighbours. A window starts and ends at whitespace where one lies in the last half of the
    window, else between words (punctuation is a word), else anywhere."""
    n = len(offsets)
    if n == 0:
        return []

    def boundary(i: int, low: int) -> int:
        """The last token in ``[low, i]`` that starts after whitespace, else one that starts
        a word, else ``i``: a cut before it does not split a word."""
        candidates = range(i, max(low, 1) - 1, -1)
        for j in candidates:
            if offsets[j][0] > offsets[j - 1][1]:
                return j
        for j in candidates:
            if words[j] != words[j - 1]:
                return j
        return i

    spans = []
    start = 0
    while True:
        end = min(start + size, n)
        if end < n:
            end = boundary(end, start + max(1, size // 2))
        spans.append((offsets[start][0], offsets[end - 1][1]))
        if end >= n:
            return spans
        nxt = max(end - overlap, start + 1)
        start = boundary(nxt, max(start + 1, nxt - max(1, size // 4)))
