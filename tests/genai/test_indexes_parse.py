"""Documents from folders, fsspec URLs and rows: text, Markdown, HTML and PDF; bad files are
skipped with a reason and the rest parsed."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import fsspec
import pytest
from indexes_helpers import make_pdf

from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.genai.indexes import read_folder, read_rows
from cauce.genai.indexes.parse import parse_document

HTML = """<!doctype html>
<html><head><title>Drift  monitors</title>
<style>body { color: red }</style>
<script>var token = "do-not-index";</script></head>
<body><nav>Home</nav>
<h1>Watching drift</h1>
<p>Monitors compute the Jensen&#8211;Shannon distance &amp; PSI.</p>
<div hidden><p>hidden paragraph</p></div>
<noscript>enable scripts</noscript>
<ul><li>first</li><li>second</li></ul>
<pre>code   keeps
  its spaces</pre>
</body></html>
"""


def _folder(root: Path) -> dict[str, bytes]:
    files = {
        "guide.md": b"# Rollbacks\n\nUse `cauce rollouts undo`.\n",
        "page.html": HTML.encode(),
        "manual.pdf": make_pdf(["Canary analysis page one", "Promotion on page two"], "Manual"),
        "notes/plain.txt": "Gates block a bad model; café ✓".encode(),
        "broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R\nthis is not a pdf",
        "latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1"),
        "image.png": b"\x89PNG\r\n\x1a\n",
        "empty.md": b"  \n\n",
        ".git/config.txt": b"hidden folder",
        ".hidden.md": b"# hidden file",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_a_folder_is_parsed_and_bad_files_are_skipped_with_their_reason(tmp_path: Path) -> None:
    files = _folder(tmp_path)
    parsed = read_folder(tmp_path)

    ids = [d.id for d in parsed.documents]
    assert ids == ["guide.md", "manual.pdf", "notes/plain.txt", "page.html"]
    reasons = {s.id: s.reason for s in parsed.skipped}
    assert set(reasons) == {"broken.pdf", "latin1.txt", "image.png", "empty.md"}
    assert "PDF" in reasons["broken.pdf"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert reasons["image.png"] == "unsupported file type '.png'"
    assert reasons["empty.md"] == "no text found"

    docs = {d.id: d for d in parsed.documents}
    for doc in parsed.documents:
        assert doc.sha256 == hashlib.sha256(files[doc.id]).hexdigest()
        assert doc.metadata["path"] == doc.id
        assert doc.metadata["modified"].endswith("+00:00")
    assert parsed.hashes() == {d.id: d.sha256 for d in parsed.documents}

    assert docs["guide.md"].media_type == "text/markdown"
    assert docs["guide.md"].metadata["title"] == "Rollbacks"
    assert docs["guide.md"].text.startswith("# Rollbacks")
    assert docs["notes/plain.txt"].text == "Gates block a bad model; café ✓"
    assert "title" not in docs["notes/plain.txt"].metadata

    pdf = docs["manual.pdf"]
    assert pdf.media_type == "application/pdf"
    assert pdf.text == "Canary analysis page one\n\nPromotion on page two"
    assert pdf.metadata["title"] == "Manual" and pdf.metadata["pages"] == 2


def test_html_keeps_only_the_visible_text(tmp_path: Path) -> None:
    doc = parse_document("page.html", HTML.encode(), "text/html")
    assert doc.metadata["title"] == "Drift monitors"
    assert doc.text.splitlines() == [
        "Home",
        "",
        "Watching drift",
        "",
        "Monitors compute the Jensen\u2013Shannon distance & PSI.",
        "",
        "first",
        "",
        "second",
        "",
        "code   keeps",
        "its spaces",
    ]
    for invisible in ("do-not-index", "color", "hidden paragraph", "enable scripts", "Drift"):
        assert invisible not in doc.text


def test_html_in_its_declared_charset_and_utf16_text_are_read() -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>caf\xe9</p></body></html>'
    assert parse_document("p.html", page.encode("latin-1"), "text/html").text == "café"
    text = "bonjour ✓".encode("utf-16")
    assert parse_document("t.txt", text, "text/plain").text == "bonjour ✓"
    with pytest.raises(InvalidInput, match="NUL"):
        parse_document("b.txt", b"\x00\x01\x02binary", "text/plain")


def test_an_fsspec_url_and_a_single_file_are_sources() -> None:
    root = f"memory://cauce-docs-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/a/one.md", b"# One\n\ntext one")
    fs.pipe(f"{root}/two.txt", b"text two")
    fs.pipe(f"{root}/bad.pdf", b"not a pdf")
    try:
        parsed = read_folder(root)
        assert [d.id for d in parsed.documents] == ["a/one.md", "two.txt"]
        assert [s.id for s in parsed.skipped] == ["bad.pdf"]
        single = read_folder(f"{root}/a/one.md")
        assert [d.id for d in single.documents] == ["one.md"]
        assert single.documents[0].metadata["title"] == "One"
    finally:
        fs.rm(root, recursive=True)


def test_a_missing_source_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        read_folder(tmp_path / "nowhere")


def test_rows_become_documents_and_bad_rows_are_skipped() -> None:
    parsed = read_rows([("q2", "second answer"), (1, "first answer"), ("q3", ""), ("q4", None)])  # type: ignore[list-item]
    assert [d.id for d in parsed.documents] == ["1", "q2"]
    assert parsed.documents[1].sha256 == hashlib.sha256(b"second answer").hexdigest()
    assert parsed.documents[1].metadata == {"path": "q2"}
    assert {s.id: s.reason for s in parsed.skipped} == {
        "q3": "no text found",
        "q4": "text is NoneType, not a string",
    }
    markdown = read_rows([("m", "# Title\n\nbody")], media_type="text/markdown")
    assert markdown.documents[0].metadata["title"] == "Title"
    with pytest.raises(AlreadyExists, match="'a' appears twice"):
        read_rows([("a", "x"), ("a", "y")])
    with pytest.raises(InvalidInput, match="rows hold text"):
        read_rows([("a", "x")], media_type="application/pdf")
