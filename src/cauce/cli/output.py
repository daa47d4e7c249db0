"""Printing for the CLI: Rich tables for people, ``--json`` for programs, errors on one line."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
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
    title: str | None,
    columns: list[str],
    rows: list[list[Any]],
    *,
    empty: str | None = None,
    short_ids: bool = False,
    optional: int = 0,
) -> None:
    """Print a Rich table, a missing or empty value as a dash; with no rows, ``empty`` instead
    (what there is not, and how to make it) where given.

    Too wide for the terminal, the table is fitted without breaking a word: the ``ID`` columns'
    32-character ids are cut to 8 where ``short_ids`` (the command takes an id's start back),
    then long cells wrap at their spaces, then the last ``optional`` columns are left out from
    the right, and a line under the table names them. Piped, nothing is fitted.
    """
    if not rows and empty:
        console.print(Text(empty))
        return
    cells = [["—" if v is None or v == "" else str(v) for v in row] for row in rows]
    room = console.width
    measured = _measure(columns, cells)
    if short_ids and _natural_width(measured) > room:
        ids = [i for i, c in enumerate(columns) if _is_id(c)]
        cells = [[_short_id(v) if i in ids else v for i, v in enumerate(r)] for r in cells]
        measured = _measure(columns, cells)
    widths: list[int | None] = [None] * len(columns)
    left_out: list[str] = []
    if _natural_width(measured) > room:
        kept = len(columns)
        fitted = _fit(measured, room, 0)
        while fitted is None and kept > len(columns) - optional:
            kept -= 1
            fitted = _fit(measured[:kept], room, 0)
        fitted = fitted or _fit(measured[:kept], room, _NARROWEST)
        if fitted is not None:  # else Rich folds every column
            left_out, columns = columns[kept:], columns[:kept]
            cells, widths = [r[:kept] for r in cells], list(fitted)
    out = Table(title=title, title_justify="left", header_style="bold")
    for column, width in zip(columns, widths, strict=True):
        # Identifiers are copied and pasted: never break them across lines.
        out.add_column(column, overflow="fold", no_wrap=_is_id(column), width=width)
    for row in cells:
        # Text, not markup: a check name or a value with "[...]" must print as it is.
        out.add_row(*[Text(v) for v in row])
    console.print(out)
    if left_out:
        named = ", ".join(left_out[:_NAMED])
        if len(left_out) > _NAMED:
            named += f" and {len(left_out) - _NAMED} more"
        console.print(
            Text(
                f"Left out at {room} columns: {named} (a wider terminal, or --json, shows them).",
                style="dim",
            )
        )


# A word longer than _LONGEST_WORD may be folded to fit a table; shorter ones only where they
# must, those of _SHORT_WORD or fewer (a date, a status, a number) last, and never narrower
# than _NARROWEST.
_LONGEST_WORD = 24
_SHORT_WORD = 12
_NARROWEST = 8
# Columns left out are named up to this many, then counted.
_NAMED = 8


def _is_id(column: str) -> bool:
    return column.endswith("ID") or column in ("Run", "Entity")


def _short_id(value: str) -> str:
    return value[:8] if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else value


def _chrome(count: int) -> int:
    """Columns a table of ``count`` columns takes beside its cells: borders and padding."""
    return 3 * count + 1


@dataclass(frozen=True)
class _Measured:
    """What fitting a column needs to know of it, in terminal cells."""

    is_id: bool
    low: int  # narrowest without folding a word (at most _LONGEST_WORD); an id's whole width
    cells: int  # widest cell on one line
    high: int  # widest cell or header on one line
    header_word: int  # the header's longest word
    prose: bool  # some cell has several words (a reason, measured values)


def _measure(columns: list[str], cells: list[list[str]]) -> list[_Measured]:
    measured = []
    for i, column in enumerate(columns):
        lines = [line for r in cells for line in r[i].splitlines() or [""]]
        widest = max((cell_len(line) for line in lines), default=0)
        high = max(widest, *(cell_len(line) for line in column.splitlines() or [""]))
        header_word = max((cell_len(w) for w in column.split()), default=1)
        word = max([header_word, *(cell_len(w) for line in lines for w in line.split())])
        is_id = _is_id(column)
        measured.append(
            _Measured(
                is_id=is_id,
                low=high if is_id else min(word, _LONGEST_WORD, high),
                cells=widest,
                high=high,
                header_word=header_word,
                prose=any(len(r[i].split()) > 1 for r in cells),
            )
        )
    return measured


def _natural_width(measured: list[_Measured]) -> int:
    return _chrome(len(measured)) + sum(m.high for m in measured)


def _fit(measured: list[_Measured], room: int, narrowest: int) -> list[int] | None:
    """Widths of the ``measured`` columns that fit ``room``, or None.

    Each column starts at its narrowest without folding a word; with ``narrowest`` set, the
    columns of long words fold them, down to that many characters, where they must (prose
    first, words of a date, a status or a number last). The space left goes to the columns
    whose cells need least of it to fit on one line first, then to the headers."""
    inside = room - _chrome(len(measured))
    widths = [m.low for m in measured]
    if sum(widths) > inside and narrowest:
        foldable = [i for i, m in enumerate(measured) if not m.is_id]
        long_words = [i for i in foldable if widths[i] > _SHORT_WORD]
        # Prose (a reason, measured values) folds before a name (a user, a dataset).
        prose = [i for i in long_words if measured[i].prose]
        # A header's words never fold: a column is never narrower than its header's longest.
        floors = [max(narrowest, m.header_word) for m in measured]
        for fold in (prose, long_words, foldable):
            capped = _capped(widths, fold, floors, inside)
            if capped is not None:
                widths = capped
                break
    if sum(widths) > inside:
        return None
    # The cells first: a header of two words may take two lines, a date had better not.
    one_line = [max(m.cells, w) for m, w in zip(measured, widths, strict=True)]
    for wanted in (one_line, [m.high for m in measured]):
        spare = inside - sum(widths)
        for i in sorted(range(len(widths)), key=lambda i: wanted[i] - widths[i]):
            given = min(max(wanted[i] - widths[i], 0), spare)
            widths[i] += given
            spare -= given
    return widths


def _capped(widths: list[int], fold: list[int], floors: list[int], inside: int) -> list[int] | None:
    """``widths`` with the columns ``fold`` cut to the widest cap that fits ``inside``, none
    narrower than its floor."""
    for cap in range(max(widths), min(floors) - 1, -1):
        capped = [min(w, max(cap, floors[i])) if i in fold else w for i, w in enumerate(widths)]
        if sum(capped) <= inside:
            return capped
    return None


def tag_values(
    values: list[str] | None, remove: list[str], *, bare: bool = False
) -> dict[str, str]:
    """The tags a ``tag`` command sets, from its ``KEY=VALUE`` arguments (with ``bare``, a
    ``KEY`` alone is a tag with no value); one of them or a ``--remove`` is needed."""
    from cauce.errors import InvalidInput

    pairs = [value.partition("=") for value in values or []]
    bad = [key for key, sep, _ in pairs if not key or not (sep or bare)]
    if bad or not (pairs or remove):
        form = "KEY=VALUE (or KEY)" if bare else "KEY=VALUE"
        raise InvalidInput(
            f"give tags as {form}, or --remove KEY" + (f", not {bad[0]!r}" if bad else ""),
            details={"field": "values"},
        )
    return {key: value for key, _, value in pairs}


def tags_text(tags: dict[str, str]) -> str:
    """Tags on one line, ``KEY=VALUE`` (a tag with no value, ``KEY``), by key."""
    return " ".join(f"{k}={v}" if v else k for k, v in sorted(tags.items()))


def more(shown: int, limit: int) -> None:
    """Under a list cut at its limit: that there may be more, and how to see them."""
    if shown >= limit:
        console.print(
            Text(f"Only the first {limit} shown: -n {limit * 2} shows more.", style="dim")
        )


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """``key: old → new`` for each value that changed, compact: a long hex digest cut to 12
    characters, a time (``*_time``, ``*_at``) as a date and time."""
    before, after = before or {}, after or {}
    parts = []
    for key in sorted(set(before) | set(after), key=lambda k: (k not in after, k)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in before:
            parts.append(f"{key}: {_short(key, old)} → {_short(key, new)}")
        else:
            parts.append(f"{key}: {_short(key, new)}")
    return "; ".join(parts)


def _short(key: str, value: Any) -> str:
    if key.endswith(("_time", "_at")) and isinstance(value, int) and not isinstance(value, bool):
        return when(value)  # a time in milliseconds, as the tables write it
    text = "—" if value is None else str(value)
    return (
        text[:12] + "…" if len(text) > 16 and all(c in "0123456789abcdef" for c in text) else text
    )


def error(message: str, *, label: str = "error") -> None:
    """Print one readable error line on stderr (the message is text, never Rich markup)."""
    err_console.print(Text.assemble((f"{label}:", "bold red"), " ", message), soft_wrap=True)
