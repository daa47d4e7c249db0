"""Printing for the CLI: Rich tables for people, ``--json`` for programs, errors on one line."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cauce.server import formats

# Piped or redirected (grep, a log file), a table keeps each row on one line however wide it
# is; Rich would fold it to 80 columns. At a terminal, or with COLUMNS set, that width rules.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 10_000
console = Console(highlight=False, width=_PIPED_WIDTH)
err_console = Console(stderr=True, highlight=False)

JSON_OPTION_HELP = "Print machine-readable JSON instead of a table."


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as strings, as MLflow's REST API does."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=str) + "\n")


def when(ms: int | None) -> str:
    """A millisecond timestamp as local date and time."""
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    """How long a run took (``1.2 s``, ``3 min 4 s``: as the web UI writes it), or '—'."""
    return formats.duration(start, end, missing="—")


def took(milliseconds: float | None) -> str:
    """A measured time (``0.25 ms``, ``812 ms``, ``7.9 s``: as the web UI writes it), or '—'."""
    return formats.took(milliseconds, missing="—")


def number(value: Any) -> str:
    """A metric value, short; a missing one as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(
    title: str | None, columns: list[str], rows: list[list[Any]], *, empty: str | None = None
) -> None:
    """Print a Rich table, a missing or empty value as a dash; with no rows, ``empty`` instead
    (what there is not, and how to make it) where given."""
    if not rows and empty:
        console.print(Text(empty))
        return
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        # Identifiers are copied and pasted: never break them across lines.
        is_id = column.endswith("ID") or column in ("Run", "Entity")
        out.add_column(column, overflow="fold", no_wrap=is_id)
    for row in rows:
        # Text, not markup: a check name or a value with "[...]" must print as it is.
        out.add_row(*[Text("—" if v is None or v == "" else str(v)) for v in row])
    console.print(out)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """``key: old → new`` for each value that changed, compact."""
    before, after = before or {}, after or {}
    parts = []
    for key in sorted(set(before) | set(after), key=lambda k: (k not in after, k)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in before:
            parts.append(f"{key}: {_short(old)} → {_short(new)}")
        else:
            parts.append(f"{key}: {_short(new)}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = "—" if value is None else str(value)
    return (
        text[:12] + "…" if len(text) > 16 and all(c in "0123456789abcdef" for c in text) else text
    )


def error(message: str, *, label: str = "error") -> None:
    """Print one readable error line on stderr (the message is text, never Rich markup)."""
    err_console.print(Text.assemble((f"{label}:", "bold red"), " ", message), soft_wrap=True)
