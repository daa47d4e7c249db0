"""How a person reads a measured time: one way for the web UI and the CLI.

``20 ms``, ``1.2 s``, ``3 min 4 s``, ``2 h 5 min``; ``<1 ms`` for a time kept in whole
milliseconds that is 0 (shorter than one), ``0.25 ms`` for one kept finer. No import beyond
the standard library: the CLI reads it at every start.
"""

from __future__ import annotations


def took(milliseconds: float | None, missing: str = "") -> str:
    """A measured time in milliseconds as a person reads it; ``missing`` when unknown."""
    if milliseconds is None:
        return missing
    if milliseconds == 0 and isinstance(milliseconds, int):
        return "<1 ms"
    if milliseconds < 1000:
        return f"{max(0, milliseconds):.4g} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def duration(start: float | None, end: float | None, missing: str = "") -> str:
    """How long from ``start`` to ``end`` (milliseconds), as :func:`took` reads it."""
    if start is None or end is None:
        return missing
    return took(end - start, missing)
