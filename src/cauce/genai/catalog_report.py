"""The HTML page of a catalog comparison: one self-contained file, everything escaped.

The page shows the comparison (dataset, flow version, evaluators, run), the table of cells with
the best value of each column marked (highest score; lowest latency, tokens, cost and errors),
a bar per cell for each evaluator, and the catalog entries compared. Styles are one ``<style>``
tag and bars are inline SVG: the page loads nothing and renders offline.

Example::

    cauce catalog compare -d qa --models gpt-4o-mini,smollm2 --prompt answer@production \\
        -e f1 --html compare.html
"""

from __future__ import annotations

import datetime as dt
import html
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cauce.genai.catalog import Cell, Comparison

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
margin:0;background:#f4f5f7}
main{max-width:1280px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
.muted{color:#666}.small{font-size:12px}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 18px;
background:#fff;border:1px solid #ddd;border-radius:8px;padding:14px 16px;margin-top:12px}
.meta label{display:block;color:#666;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #ddd}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eee;vertical-align:middle}
th{background:#fafafa;font-size:12px;color:#555;font-weight:600}
td{font-variant-numeric:tabular-nums}
td.best{background:#e3f1e4;font-weight:600}
.bars{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px}
svg{max-width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#555}
"""
BAR = "#4c78a8"


def render(comparison: Comparison) -> str:
    """The page, as text."""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e('Catalog comparison on ' + comparison.dataset)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{_e('Catalog comparison on ' + comparison.dataset)}</h1>",
        f'<div class="muted small">generated {_e(generated)}</div>',
        _meta(comparison),
        "<h2>Side by side</h2>",
        _cells_table(comparison),
    ]
    if comparison.evaluators:
        parts += ["<h2>Quality</h2>", _bars(comparison)]
    parts += ["<h2>Models</h2>", _models_table(comparison), "</main></body></html>"]
    return "\n".join(parts)


def write(comparison: Comparison, path: Path) -> Path:
    """Write the page to ``path`` atomically (a temporary file renamed into place)."""
    from cauce.errors import InvalidInput

    path = path.expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".catalog-", suffix=".html")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render(comparison))
        os.replace(temporary, path)
    except OSError as exc:
        raise InvalidInput(f"cannot write the HTML page {path}: {exc.strerror}") from None
    return path


def _meta(comparison: Comparison) -> str:
    items = [
        ("Dataset", comparison.dataset),
        ("Comparison run", comparison.run_id),
        ("Flow", comparison.flow),
        ("Evaluators", ", ".join(comparison.evaluators) or "none"),
        ("Models", ", ".join(m.name for m in comparison.models)),
        ("Prompts", ", ".join(dict.fromkeys(c.prompt for c in comparison.cells))),
    ]
    cells = "".join(f"<div><label>{_e(k)}</label>{_e(v)}</div>" for k, v in items)
    return f'<div class="meta">{cells}</div>'


def _cells_table(comparison: Comparison) -> str:
    columns = comparison.columns()
    rows = comparison.rows()
    best = _best(comparison)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="best">{_e(v)}</td>' if (index, column) in best else f"<td>{_e(v)}</td>"
            for column, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _best(comparison: Comparison) -> set[tuple[int, int]]:
    """(row, column) of the best value in each numeric column, when cells differ."""
    cells = comparison.cells
    offset = 2 + len(comparison.evaluators)
    measures: list[tuple[int, Any, bool]] = [
        (2 + i, (lambda c, n=name: c.quality.get(n)), True)
        for i, name in enumerate(comparison.evaluators)
    ]
    measures += [
        (offset, lambda c: c.latency_p50_ms, False),
        (offset + 1, lambda c: c.latency_p95_ms, False),
        (offset + 4, lambda c: c.cost, False),
        (offset + 5, lambda c: c.cost_per_request, False),
        (offset + 6, lambda c: c.error_rate, False),
    ]
    found: set[tuple[int, int]] = set()
    for column, read, higher in measures:
        values = [(i, read(c)) for i, c in enumerate(cells)]
        known = [(i, v) for i, v in values if v is not None and v == v]
        if len(known) < 2 or len({v for _, v in known}) < 2:
            continue
        target = max(v for _, v in known) if higher else min(v for _, v in known)
        found |= {(i, column) for i, v in known if v == target}
    return found


def _bars(comparison: Comparison) -> str:
    cards = []
    for name in comparison.evaluators:
        cards.append(f'<div class="card"><b>{_e(name)}</b>{_bar_svg(comparison.cells, name)}</div>')
    return f'<div class="bars">{"".join(cards)}</div>'


def _bar_svg(cells: list[Cell], name: str) -> str:
    values = [c.quality.get(name) for c in cells]
    known = [v for v in values if v is not None and v == v]
    top = max([1.0, *known])
    label_w, bar_w, row_h = 190, 160, 22
    height = row_h * len(cells) + 6
    width = label_w + bar_w + 60
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(name)} by model and prompt">'
    ]
    for row, (cell, value) in enumerate(zip(cells, values, strict=True)):
        y = row * row_h + 4
        parts.append(f'<text x="0" y="{y + 13}">{_e(_short(cell.variant, 30))}</text>')
        if value is None or value != value:
            parts.append(f'<text x="{label_w}" y="{y + 13}">—</text>')
            continue
        length = max(bar_w * max(value, 0.0) / top, 0.0)
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{length:.1f}" height="14" fill="{BAR}"/>'
        )
        parts.append(f'<text x="{label_w + length + 6:.1f}" y="{y + 13}">{value:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _models_table(comparison: Comparison) -> str:
    columns = [
        "Name",
        "Provider",
        "Connection",
        "Upstream model",
        "Context length",
        "Price in / out (per 1M tokens)",
        "Licence",
        "Modality",
        "Description",
    ]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for m in comparison.models:
        price = f"{m.price['input']:g} / {m.price['output']:g}" if m.price else "unknown"
        values = [
            m.name,
            m.provider,
            m.connection,
            m.model,
            m.context_length if m.context_length is not None else "—",
            price,
            m.licence or "—",
            ", ".join(m.modality),
            m.description or "",
        ]
        body.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in values) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
