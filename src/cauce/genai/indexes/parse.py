"""Documents from a folder or any fsspec URL, or from (id, text) rows: their visible text.

Text (``.txt``), Markdown (``.md``), HTML (``.html``) and PDF (``.pdf``) files are read. A file that
cannot be read as its type (a corrupt PDF, bytes that are not text in any declared encoding, a
type Cauce does not parse) is skipped: it appears in :attr:`Parsed.skipped` with the reason, and
the other files are parsed. Hidden files and folders (a name starting with ``.``) are ignored::

    parsed = read_folder("docs/")                # or "s3://bucket/handbook/", "memory://..."
    parsed = read_rows([("faq-1", "How do I ..."), ("faq-2", "...")])
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from cauce.errors import AlreadyExists, InvalidInput, NotFound

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
PARSED_MEDIA_TYPES = frozenset(MEDIA_TYPES.values())


@dataclass(frozen=True)
class Document:
    """One source document: its id (path relative to the source), visible text, the sha256 of
    its bytes, media type and metadata (``path``, and ``title`` / ``modified`` where known)."""

    id: str
    text: str
    sha256: str
    media_type: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A document that was not parsed, and why."""

    id: str
    reason: str


@dataclass
class Parsed:
    """What a source yielded: the documents parsed, sorted by id, and those skipped."""

    documents: list[Document]
    skipped: list[Skipped]

    def hashes(self) -> dict[str, str]:
        """Document id -> sha256 of its bytes."""
        return {d.id: d.sha256 for d in self.documents}


def media_type_of(name: str) -> str | None:
    """The media type Cauce parses a file as, from its name's suffix; None if it parses none."""
    return MEDIA_TYPES.get(PurePosixPath(name).suffix.lower())


def read_folder(source: str | Path, *, storage_options: Mapping[str, Any] | None = None) -> Parsed:
    """Every file under ``source`` (a folder, a single file or any fsspec URL), parsed."""
    import fsspec

    shown = str(source)
    try:
        fs, root = fsspec.core.url_to_fs(str(source), **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise InvalidInput(
            f"cannot open document source {shown}: {exc}",
            hint="install the filesystem's package, e.g. pip install s3fs",
        ) from None
    if not fs.exists(root):
        raise NotFound(f"document source {shown} does not exist")
    if fs.isfile(root):
        files = {root: fs.info(root)}
        prefix = str(PurePosixPath(root).parent)
    else:
        files = fs.find(root, detail=True)
        prefix = root
    documents, skipped = [], []
    for path in sorted(files):
        relative = path[len(prefix) :].lstrip("/") if path.startswith(prefix) else path
        if any(part.startswith(".") for part in PurePosixPath(relative).parts):
            continue
        media_type = media_type_of(relative)
        if media_type is None:
            suffix = PurePosixPath(relative).suffix or "(no suffix)"
            skipped.append(Skipped(relative, f"unsupported file type {suffix!r}"))
            continue
        try:
            data = fs.cat_file(path)
        except OSError as exc:
            skipped.append(Skipped(relative, f"cannot read: {exc}"))
            continue
        metadata: dict[str, Any] = {"path": relative}
        modified = _modified(files[path])
        if modified is not None:
            metadata["modified"] = modified
        try:
            documents.append(parse_document(relative, data, media_type, metadata))
        except InvalidInput as exc:
            skipped.append(Skipped(relative, exc.message))
    return Parsed(documents, skipped)


def read_rows(rows: Iterable[tuple[str, str]], *, media_type: str = "text/plain") -> Parsed:
    """Documents from ``(id, text)`` rows, e.g. a dataset's id and text columns; an empty or
    missing text is skipped, a repeated id is an error."""
    if media_type not in ("text/plain", "text/markdown"):
        raise InvalidInput(
            f"rows hold text, not {media_type!r}", hint="use text/plain or text/markdown"
        )
    documents, skipped, seen = [], [], set()
    for raw_id, text in rows:
        doc_id = str(raw_id)
        if doc_id in seen:
            raise AlreadyExists(
                f"document id {doc_id!r} appears twice in the rows",
                hint="use a column whose values are unique as the document id",
            )
        seen.add(doc_id)
        if not isinstance(text, str):
            skipped.append(Skipped(doc_id, f"text is {type(text).__name__}, not a string"))
            continue
        try:
            documents.append(
                parse_document(doc_id, text.encode("utf-8"), media_type, {"path": doc_id})
            )
        except InvalidInput as exc:
            skipped.append(Skipped(doc_id, exc.message))
    documents.sort(key=lambda d: d.id)
    return Parsed(documents, skipped)


def parse_document(
    doc_id: str, data: bytes, media_type: str, metadata: Mapping[str, Any] | None = None
) -> Document:
    """One document from its bytes; InvalidInput (saying why) when they cannot be read as
    ``media_type`` or hold no text."""
    meta = dict(metadata or {})
    if media_type == "application/pdf":
        text, title, extra = _pdf_text(data)
        meta.update(extra)
    elif media_type == "text/html":
        text, title = _html_text(_decode(data, html=True))
    elif media_type == "text/markdown":
        text = _decode(data)
        title = _markdown_title(text)
    elif media_type == "text/plain":
        text, title = _decode(data), None
    else:
        raise InvalidInput(f"unsupported media type {media_type!r}")
    if not text.strip():
        raise InvalidInput("no text found")
    if title:
        meta["title"] = title
    return Document(doc_id, text, hashlib.sha256(data).hexdigest(), media_type, meta)


# -- text and Markdown ------------------------------------------------------------------------

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._-]+)""", re.I)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _decode(data: bytes, *, html: bool = False) -> str:
    """UTF-8 (a BOM allowed), UTF-16 with a BOM, or for HTML the charset its ``<meta>``
    declares."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        declared = _CHARSET.search(data[:4096]) if html else None
        if declared is None:
            raise InvalidInput(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        charset = declared.group(1).decode("ascii")
        try:
            codecs.lookup(charset)
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError) as inner:
            raise InvalidInput(f"not text in its declared charset {charset!r}: {inner}") from None
    if "\x00" in text:
        raise InvalidInput("binary content (NUL characters), not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_title(text: str) -> str | None:
    """The first level-1 heading, else the first heading of any level."""
    headings = [(len(m.group(1)), m.group(2).strip()) for m in _ATX_HEADING.finditer(text)]
    top = [title for level, title in headings if level == 1]
    if top:
        return top[0]
    return headings[0][1] if headings else None


# -- HTML -------------------------------------------------------------------------------------

# Elements whose content is never shown as text.
_INVISIBLE = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip
_BLOCK = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
     "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
     "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th",
     "tr", "ul", "title"}
)  # fmt: skip


class _VisibleText(HTMLParser):
    """Collects the text a browser would show: no script, style or hidden elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.h1: list[str] = []
        self.hidden_depth = 0  # > 0 inside an invisible element
        self.hidden_stack: list[str] = []
        self.in_title = False
        self.in_h1 = False
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag == "h1":
            self.in_h1 = True
        if tag in _VOID:
            if tag in _BLOCK and not self.hidden_depth:
                self.parts.append("\n")
            return
        hidden = tag in _INVISIBLE or any(name == "hidden" for name, _ in attrs)
        if self.hidden_depth or hidden:
            self.hidden_stack.append(tag)
            self.hidden_depth += 1
            return
        if tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "h1":
            self.in_h1 = False
        if self.hidden_depth:
            if tag in self.hidden_stack:  # close up to the matching open tag (HTML is lenient)
                while self.hidden_stack and self.hidden_stack.pop() != tag:
                    self.hidden_depth -= 1
                self.hidden_depth -= 1
            return
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self.hidden_depth:
            return
        if self.in_h1:
            self.h1.append(data)
        self.parts.append(data if self.pre_depth else re.sub(r"\s+", " ", data))


def _html_text(markup: str) -> tuple[str, str | None]:
    """The visible text of an HTML page, a line per block, and its title (``<title>`` or the
    first ``<h1>``)."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split()) or " ".join("".join(parser.h1).split())
    return text, title or None


# -- PDF --------------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> tuple[str, str | None, dict[str, Any]]:
    """The text of every page, pages separated by a blank line; the title; the page count."""
    from pypdf import PdfReader

    # pypdf raises many exception types on damaged files (its own, ValueError, KeyError,
    # struct.error, ...): any of them means "this file cannot be read as a PDF". Its logged
    # warnings about damage ("EOF marker not found") are dropped: the skip reason says it.
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidInput("encrypted PDF (a password is needed)")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = info.title if info is not None else None
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"corrupt or unreadable PDF: {type(exc).__name__}: {exc}") from None
    finally:
        pypdf_log.setLevel(level)
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    return text, (str(title).strip() or None) if title else None, {"pages": len(pages)}


def _modified(info: Mapping[str, Any]) -> str | None:
    """A file's modification time as ISO 8601 UTC, when its filesystem lists one."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, int | float):
        value = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC).isoformat(timespec="seconds")
    return None
