"""Column profiles of a Parquet table, computed by DuckDB in three queries whatever its size.

One aggregate query gives counts, moments, ranges and quantiles of every column; one query of
a GROUP BY per column gives the top values and the distinct counts; one gives the histograms.

For every column: its type, null count and rate, distinct count and the ten most frequent values
with their counts. Numeric columns add min, max, mean, standard deviation (sample, as pandas),
quantiles p01…p99 (linear interpolation, as numpy) and a 20-bin equal-width histogram over the
finite values (the last bin includes its right edge, as numpy). Date and time columns add min and
max. Values that JSON cannot hold (NaN, ±infinity) are written as the strings "NaN",
"Infinity" and "-Infinity".
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from cauce.errors import BackendError

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
QUANTILE_KEYS = tuple(f"p{round(q * 100):02d}" for q in QUANTILES)
TOP_K = 10
BINS = 20

_INTEGER = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip
_FLOAT = {"FLOAT", "DOUBLE", "REAL"}
_TEMPORAL_PREFIXES = ("DATE", "TIME", "TIMESTAMP")


def profile_parquet(path: str) -> dict[str, Any]:
    """The profile of a local Parquet file."""
    import duckdb

    try:
        with duckdb.connect() as con:
            con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({_literal(path)})")
            return _profile(con)
    except duckdb.Error as exc:
        raise BackendError(f"DuckDB could not profile the table: {exc}") from exc


def _profile(con: Any) -> dict[str, Any]:
    described = con.execute("DESCRIBE t").fetchall()
    columns = [(str(row[0]), str(row[1])) for row in described]
    kinds = {name: _kind(kind) for name, kind in columns}

    stats = _stats(con, columns, kinds)
    rows = int(stats["__rows"])
    top, distinct = _top_values(con, columns) if columns and rows else ({}, {})
    numeric = [
        (i, name)
        for i, (name, _) in enumerate(columns)
        if kinds[name] in ("integer", "float", "decimal")
    ]
    histograms = _histograms(con, numeric, stats) if numeric and rows else {}

    profiled: dict[str, Any] = {}
    for i, (name, kind) in enumerate(columns):
        nulls = rows - int(stats[f"n{i}"])
        column: dict[str, Any] = {
            "type": kind,
            "null_count": nulls,
            "null_rate": nulls / rows if rows else None,
            "distinct_count": distinct.get(i, 0),
        }
        if kinds[name] in ("integer", "float", "decimal"):
            quantiles = stats[f"q{i}"]
            keyed = zip(QUANTILE_KEYS, quantiles or (), strict=False)
            column.update(
                min=_number(stats[f"min{i}"], kinds[name]),
                max=_number(stats[f"max{i}"], kinds[name]),
                mean=_number(stats[f"mean{i}"], "float"),
                std=_number(stats[f"std{i}"], "float"),
                quantiles=(
                    None if quantiles is None else {k: _number(v, "float") for k, v in keyed}
                ),
                histogram=histograms.get(name),
            )
        elif kinds[name] == "temporal":
            column.update(min=_scalar(stats[f"min{i}"]), max=_scalar(stats[f"max{i}"]))
        column["top_k"] = [
            {"value": _typed(value, kinds[name]), "count": count} for value, count in top.get(i, [])
        ]
        profiled[name] = column
    return {"row_count": rows, "column_count": len(columns), "columns": profiled}


def _stats(con: Any, columns: list[tuple[str, str]], kinds: dict[str, str]) -> dict[str, Any]:
    """Counts, distincts, moments and quantiles of every column, in one pass."""
    parts = ["count(*) AS __rows"]
    for i, (name, _) in enumerate(columns):
        col = _ident(name)
        parts.append(f"count({col}) AS n{i}")
        if kinds[name] in ("integer", "float", "decimal"):
            x = f"{col}::DOUBLE"
            finite = f"FILTER (WHERE isfinite({x}))"
            parts += [
                f"min({col}) AS min{i}",
                f"max({col}) AS max{i}",
                f"avg({x}) AS mean{i}",
                f"stddev_samp({x}) AS std{i}",
                f"quantile_cont({x}, {list(QUANTILES)}) AS q{i}",
                f"min({x}) {finite} AS lo{i}",
                f"max({x}) {finite} AS hi{i}",
            ]
        elif kinds[name] == "temporal":
            parts += [f"min({col}) AS min{i}", f"max({col}) AS max{i}"]
    cursor = con.execute(f"SELECT {', '.join(parts)} FROM t")
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def _top_values(
    con: Any, columns: list[tuple[str, str]]
) -> tuple[dict[int, list[tuple[str, int]]], dict[int, int]]:
    """The ten most frequent non-null values of every column (ties by value) and the number of
    distinct values, from one GROUP BY per column, in one query."""
    selects = [
        f"SELECT {i} AS c, v::VARCHAR AS v, n, d FROM ("
        f"SELECT v, n, count(*) OVER () AS d FROM ("
        f"SELECT {_ident(name)} AS v, count(*) AS n FROM t WHERE {_ident(name)} IS NOT NULL "
        f"GROUP BY 1) ORDER BY n DESC, v LIMIT {TOP_K})"
        for i, (name, _) in enumerate(columns)
    ]
    top: dict[int, list[tuple[str, int]]] = {}
    distinct: dict[int, int] = {}
    for c, v, n, d in con.execute(" UNION ALL ".join(selects)).fetchall():
        top.setdefault(int(c), []).append((v, int(n)))
        distinct[int(c)] = int(d)
    return top, distinct


def _histograms(con: Any, numeric: list[tuple[int, str]], stats: dict[str, Any]) -> dict[str, Any]:
    """20 equal-width bins between the finite min and max of every numeric column, one query."""
    selects: list[str] = []
    ranges: dict[str, tuple[int, float, float]] = {}
    for i, name in numeric:
        lo, hi = stats[f"lo{i}"], stats[f"hi{i}"]
        if lo is None or hi is None:
            continue
        ranges[name] = (i, float(lo), float(hi))
        x = f"{_ident(name)}::DOUBLE"
        if lo == hi:
            bucket = "0"
        else:
            # The same arithmetic as numpy.histogram: (x - lo) * (bins / (hi - lo)), floored.
            norm = BINS / (float(hi) - float(lo))
            bucket = f"least(floor(({x} - {float(lo)!r}) * {norm!r})::BIGINT, {BINS - 1})"
        selects.append(
            f"SELECT {i} AS c, {bucket} AS b, count(*) AS n FROM t WHERE isfinite({x}) GROUP BY ALL"
        )
    if not selects:
        return {}
    counts: dict[int, dict[int, int]] = {}
    for c, b, n in con.execute(" UNION ALL ".join(selects)).fetchall():
        counts.setdefault(int(c), {})[int(b)] = int(n)
    histograms: dict[str, Any] = {}
    for name, (i, lo, hi) in ranges.items():
        found = counts.get(i, {})
        if lo == hi:
            histograms[name] = {"edges": [lo, hi], "counts": [found.get(0, 0)]}
            continue
        step = (hi - lo) / BINS
        edges = [lo + k * step for k in range(BINS)] + [hi]
        histograms[name] = {"edges": edges, "counts": [found.get(b, 0) for b in range(BINS)]}
    return histograms


def _kind(duck_type: str) -> str:
    base = duck_type.upper()
    if base in _INTEGER:
        return "integer"
    if base in _FLOAT:
        return "float"
    if base.startswith("DECIMAL"):
        return "decimal"
    if base.startswith(_TEMPORAL_PREFIXES):
        return "temporal"
    if base == "BOOLEAN":
        return "boolean"
    return "other"


def _typed(value: str, kind: str) -> Any:
    """A top value back in its column's type (DuckDB returns them as text)."""
    if kind == "integer":
        return int(value)
    if kind in ("float", "decimal"):
        return _number(float(value), "float")
    if kind == "boolean":
        return value == "true"
    return value


def _number(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "integer" and not isinstance(value, float):
        return int(value)
    number = float(value) if isinstance(value, (int, float, decimal.Decimal)) else value
    if isinstance(number, float) and not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    return number


def _scalar(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
