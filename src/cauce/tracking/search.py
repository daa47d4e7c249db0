r"""``search_runs`` and its filter language, parsed into a bound SQLAlchemy query.

Grammar (keywords are case-insensitive; AND binds tighter than OR)::

    filter     := and_expr ("OR" and_expr)*
    and_expr   := atom ("AND" atom)*
    atom       := "(" filter ")" | comparison
    comparison := field op value
    field      := ("metrics" | "params" | "tags" | "attributes") "." key  |  attribute
                | "datasets" "." ("name" | "digest" | "context")
    op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
                | "IN" | "NOT IN" | "NOT LIKE" | "NOT ILIKE"
    value      := number | 'string' | "(" value ("," value)* ")"

A key with unusual characters is quoted: ``metrics."val loss"`` or ``metrics.`val loss```.
In a 'string', ``''`` or ``\'`` is a quote and ``\\`` a backslash. LIKE and ILIKE patterns
use ``%`` and ``_`` as wildcards and a backslash as their escape (``'a\\_b'`` matches ``a_b``),
and LIKE is case-sensitive on every backend.
Keys and values are bound parameters, never pasted into SQL; attributes come from a fixed list.
A filter holds at most MAX_COMPARISONS comparisons, MAX_DEPTH nested parentheses and
MAX_VALUES values, so that no backend meets its own limits (a raw database error).
``metrics.X`` compares the run's latest value of X (highest step, then newest), and a NaN
compares as unknown (no row matches). ``datasets.name`` (``.digest``, ``.context``) matches a
run when any dataset it read does: a dataset version it logged (its digest is the first 16
characters of its content hash, as MLflow's API shows it) or data it described by reference.
Example::

    cauce.search_runs("churn", filter="metrics.auc > 0.9 and params.C = '0.5'",
                      order_by=["metrics.auc DESC"])
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean

from cauce.errors import InvalidInput, NotFound
from cauce.operations import operation
from cauce.store.schema import (
    dataset_versions,
    datasets,
    experiments,
    metrics,
    params,
    run_dataset_references,
    run_inputs,
    run_tags,
    runs,
)
from cauce.tracking.entities import Run
from cauce.validation import check_limit
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

MAX_COMPARISONS = 200
MAX_DEPTH = 32
MAX_VALUES = 10_000
_INT64 = (-(2**63), 2**63 - 1)
_LIKE_ESCAPE = "\\"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][\w.\-/:]*)
    """,
    re.VERBOSE,
)

ATTRIBUTES: dict[str, Any] = {
    "run_id": runs.c.id,
    "id": runs.c.id,
    "run_name": runs.c.name,
    "name": runs.c.name,
    "status": runs.c.status,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "user": runs.c.user,
    "user_id": runs.c.user,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_run_id,
    "source_commit": runs.c.source_commit,
    "entry_point": runs.c.entry_point,
    "lifecycle_stage": runs.c.lifecycle_stage,
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
_PREFIXES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "dataset": "datasets",
    "datasets": "datasets",
    "attr": "attributes",
    "run": "attributes",
}
_COMPARE = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Field:
    """``metrics.auc`` → Field("metrics", "auc")."""

    kind: str
    key: str


def tokenize(text: str, what: str = "filter") -> list[Token]:
    """Split a filter (or an order_by clause: ``what``) into tokens; anything else (``;``,
    ``--`` …) is an InvalidInput."""
    for pos, char in enumerate(text):
        # Neither a NUL nor a lone surrogate can be sent to PostgreSQL as text.
        if char == "\0" or "\ud800" <= char <= "\udfff":
            raise InvalidInput(
                f"{what}: character {char!r} at position {pos} is not allowed",
                details={"field": what, "position": pos},
            )
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidInput(
                f"{what}: unexpected {text[pos]!r} at position {pos}",
                details={"field": what, "position": pos},
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, what: str = "filter"):
        self.text = text
        self.what = what
        self.tokens = tokenize(text, what)
        self.i = 0
        self.depth = 0
        self.comparisons = 0
        self.values = 0

    def error(self, message: str, at: int | None = None) -> InvalidInput:
        """An InvalidInput naming the position of token ``at`` (default: the next token)."""
        i = self.i if at is None else at
        pos = self.tokens[i].pos if i < len(self.tokens) else len(self.text)
        return InvalidInput(
            f"{self.what}: {message} at position {pos} in {self.text!r}",
            details={"field": self.what, "position": pos},
        )

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        for offset, word in enumerate(words):
            tok = self.peek(offset)
            if tok is None or tok.kind != "word" or tok.text.upper() != word:
                return False
        return True

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end")
        self.i += 1
        return tok

    def parse(self) -> ColumnElement[bool]:
        expr = self.parse_or()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return expr

    def parse_or(self) -> ColumnElement[bool]:
        from sqlalchemy import or_

        parts = [self.parse_and()]
        while self.keyword("OR"):
            self.i += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def parse_and(self) -> ColumnElement[bool]:
        from sqlalchemy import and_

        parts = [self.parse_atom()]
        while self.keyword("AND"):
            self.i += 1
            parts.append(self.parse_atom())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def parse_atom(self) -> ColumnElement[bool]:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            if self.depth >= MAX_DEPTH:
                raise self.error(f"more than {MAX_DEPTH} nested parentheses")
            self.i += 1
            self.depth += 1
            expr = self.parse_or()
            if self.take().text != ")":
                self.i -= 1
                raise self.error("expected ')'")
            self.depth -= 1
            return expr
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.error(f"more than {MAX_COMPARISONS} comparisons")
        field = self.parse_field()
        op_at = self.i
        op = self.parse_op()
        value_at = self.i
        value = self.parse_value(op)
        return compare(field, op, value, self, (op_at, value_at))

    def parse_field(self) -> Field:
        tok = self.take()
        if tok.kind != "word":
            self.i -= 1
            raise self.error(f"expected a field such as metrics.auc, not {tok.text!r}")
        head, dot, rest = tok.text.partition(".")
        if not dot:
            if head.lower() in ATTRIBUTES:
                return Field("attributes", head.lower())
            self.i -= 1
            raise self.error(
                f"unknown field {tok.text!r}; use metrics.<key>, params.<key>, tags.<key> or "
                f"one of {', '.join(sorted(ATTRIBUTES))}"
            )
        kind = _PREFIXES.get(head.lower())
        if kind is None:
            self.i -= 1
            raise self.error(
                f"unknown field prefix {head!r}; use metrics, params, tags, attributes or datasets"
            )
        if rest:
            key = rest
        else:
            quoted = self.take()
            if quoted.kind != "quoted":
                self.i -= 1
                raise self.error(f"expected a key after {tok.text!r}")
            key = quoted.text[1:-1].replace('\\"', '"')
        if kind == "datasets" and key.lower() not in _DATASET_FIELDS:
            self.i -= 1
            raise self.error(
                f"unknown dataset field {key!r}; use datasets.name, .digest or .context"
            )
        if kind == "datasets":
            key = key.lower()
        if kind == "attributes":
            if key.lower() not in ATTRIBUTES:
                self.i -= 1
                raise self.error(
                    f"unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}"
                )
            key = key.lower()
        return Field(kind, key)

    def parse_op(self) -> str:
        tok = self.take()
        if tok.kind == "op":
            return "!=" if tok.text == "<>" else tok.text
        word = tok.text.upper() if tok.kind == "word" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT":
            nxt = self.take()
            if nxt.kind == "word" and nxt.text.upper() in ("LIKE", "ILIKE", "IN"):
                return f"NOT {nxt.text.upper()}"
        self.i -= 1
        raise self.error(
            f"expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN), not {tok.text!r}"
        )

    def parse_value(self, op: str) -> Any:
        if op.endswith("IN"):
            if self.take().text != "(":
                self.i -= 1
                raise self.error("IN needs a parenthesised list of values")
            values = [self.parse_scalar()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.i += 1
                values.append(self.parse_scalar())
            if self.take().text != ")":
                self.i -= 1
                raise self.error("expected ')' to close the IN list")
            return values
        return self.parse_scalar()

    def parse_scalar(self) -> Any:
        tok = self.take()
        self.values += 1
        if self.values > MAX_VALUES:
            self.i -= 1
            raise self.error(f"more than {MAX_VALUES} values")
        if tok.kind in ("number", "string"):
            return scalar(tok)
        self.i -= 1
        raise self.error(f"expected a number or a 'quoted string', not {tok.text!r}")


def scalar(tok: Token) -> Any:
    """The value of a number or a 'quoted string' token."""
    if tok.kind == "number":
        return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
    # One pass, so that an escaped quote next to a doubled one reads as two quotes.
    return re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", tok.text[1:-1])


def _latest_metric(key: str) -> Any:
    from sqlalchemy import Float, case, null, select, type_coerce

    m = metrics.alias()
    # Typed as a float: CASE WHEN … THEN NULL has no type, and the values compared with it
    # would otherwise be bound (and cast, on PostgreSQL) as whatever Python type they have.
    return (
        select(type_coerce(case((m.c.is_nan, null()), else_=m.c.value), Float()))
        .where(m.c.run_id == runs.c.id, m.c.key == key)
        .order_by(m.c.step.desc(), m.c.timestamp.desc(), m.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


_DATASET_FIELDS = ("name", "digest", "context")


def _any_dataset(key: str, condition: Any) -> ColumnElement[bool]:
    """Whether any dataset the run read has ``condition`` on its ``key``: a dataset version it
    logged, or data it described by reference."""
    from sqlalchemy import exists, func, or_, select

    ref = run_dataset_references.alias()
    by_reference = exists().where(ref.c.run_id == runs.c.id, condition(ref.c[key]))
    used, version, dataset = run_inputs.alias(), dataset_versions.alias(), datasets.alias()
    column = {
        "name": dataset.c.name,
        "digest": func.substr(version.c.content_hash, 1, 16),
        "context": used.c.context,
    }[key]
    held = exists(
        select(1)
        .select_from(
            used.join(version, version.c.id == used.c.dataset_version_id).join(
                dataset, dataset.c.id == version.c.dataset_id
            )
        )
        .where(used.c.run_id == runs.c.id, condition(column))
    )
    return or_(held, by_reference)


def _column(field: Field) -> Any:
    from sqlalchemy import select

    if field.kind == "metrics":
        return _latest_metric(field.key)
    if field.kind == "params":
        p = params.alias()
        query = select(p.c.value).where(p.c.run_id == runs.c.id, p.c.key == field.key)
        return query.scalar_subquery()
    if field.kind == "tags":
        t = run_tags.alias()
        query = select(t.c.value).where(t.c.run_id == runs.c.id, t.c.key == field.key)
        return query.scalar_subquery()
    return ATTRIBUTES[field.key]


def compare(
    field: Field, op: str, value: Any, parser: _Parser, at: tuple[int, int]
) -> ColumnElement[bool]:
    """One comparison as a SQL expression with bound values; ``at``: its op and value tokens."""
    op_at, value_at = at

    numeric = field.kind == "metrics" or (
        field.kind == "attributes" and field.key in _NUMERIC_ATTRIBUTES
    )
    values = value if isinstance(value, list) else [value]
    if numeric:
        if op not in _COMPARE and not op.endswith("IN"):
            raise parser.error(f"{field.kind}.{field.key} is numeric; {op} applies to text", op_at)
        if any(isinstance(v, str) for v in values):
            raise parser.error(
                f"{field.kind}.{field.key} is numeric; compare it with a number", value_at
            )
        values = [_number(v) for v in values]
    else:
        if op in ("<", "<=", ">", ">="):
            raise parser.error(
                f"{field.kind}.{field.key} is text; use =, !=, LIKE, ILIKE or IN", op_at
            )
        values = [str(v) for v in values]
    if field.kind == "datasets":
        return _any_dataset(field.key, lambda column: _compared(column, op, values, parser, at))
    return _compared(_column(field), op, values, parser, at)


def _compared(
    column: Any, op: str, values: list[Any], parser: _Parser, at: tuple[int, int]
) -> ColumnElement[bool]:
    from sqlalchemy import and_, not_

    _, value_at = at
    if op.endswith("IN"):
        expr: ColumnElement[bool] = column.in_(values)
        return not_(expr) if op.startswith("NOT") else expr
    v = values[0]
    if op.endswith("LIKE") and _ends_in_escape(v):
        # PostgreSQL refuses such a pattern at run time, and only when a row reaches it.
        raise parser.error(
            f"the pattern {v!r} ends with an unpaired escape character (\\)", value_at
        )
    if op.endswith("ILIKE"):
        expr = column.ilike(v, escape=_LIKE_ESCAPE)
    elif op.endswith("LIKE"):
        # SQLite's LIKE ignores ASCII case; GLOB with the same pattern makes it exact.
        expr = and_(column.like(v, escape=_LIKE_ESCAPE), _glob(column, v))
    else:
        expr = {
            "=": column == v,
            "!=": column != v,
            "<": column < v,
            "<=": column <= v,
            ">": column > v,
            ">=": column >= v,
        }[op]
    return not_(expr) if op.startswith("NOT") else expr


class Glob(ColumnElement[bool]):
    """``column GLOB pattern`` on SQLite, where LIKE ignores ASCII case; TRUE elsewhere."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, pattern: Any):
        self.column = column
        self.pattern = pattern


@compiles(Glob, "sqlite")
def _glob_sqlite(element: Glob, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"({column} GLOB {compiler.process(element.pattern, **kw)})"


@compiles(Glob)
def _glob_other(element: Glob, compiler: Any, **kw: Any) -> str:
    return "1 = 1"


def _number(number: int | float) -> Any:
    """A bound number every backend compares as written.

    An integer past 64 bits becomes a float (SQLite raises OverflowError, PostgreSQL "out of
    range", on such a parameter); a float is bound as a float, so that PostgreSQL does not cast
    ``start_time > 0.5`` to ``start_time > 1`` (a BIGINT).
    """
    from sqlalchemy import BigInteger, Float

    if isinstance(number, int) and _INT64[0] <= number <= _INT64[1]:
        return literal(number, BigInteger())
    try:
        value = float(number)
    except OverflowError:  # an integer past the float range too
        value = math.inf if number > 0 else -math.inf
    return literal(value, Float())


def _ends_in_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip(_LIKE_ESCAPE))
    return trailing % 2 == 1


def _glob(column: Any, pattern: str) -> Glob:
    """The GLOB pattern that matches what the LIKE ``pattern`` (escape: backslash) matches."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == _LIKE_ESCAPE:
            out.append(_glob_literal(next(chars, "")))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    return Glob(column, literal("".join(out)))


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "[]*?" else char


def parse_filter(text: str) -> ColumnElement[bool]:
    """Parse a filter string into a SQL expression over the ``runs`` table."""
    return _Parser(text).parse()


def parse_order_by(clauses: Sequence[str]) -> list[Any]:
    """``["metrics.auc DESC", "start_time"]`` → ORDER BY expressions (NULLs last)."""
    return [_ordered(_column(field), descending) for field, descending in _order_fields(clauses)]


def _order_fields(clauses: Sequence[str]) -> list[tuple[Field, bool]]:
    """Each ORDER BY clause as its field and whether it is descending."""
    out = []
    for clause in clauses:
        if not isinstance(clause, str) or not clause.strip():
            raise InvalidInput(
                f"order_by entries must be non-empty strings, got {clause!r}",
                details={"field": "order_by"},
            )
        parser = _Parser(clause, "order_by")
        field = parser.parse_field()
        if field.kind == "datasets":
            parser.i -= 1
            raise parser.error("a run may read many datasets: order by one of its own fields")
        direction = "ASC"
        tok = parser.peek()
        if tok is not None:
            if tok.kind != "word" or tok.text.upper() not in ("ASC", "DESC"):
                raise parser.error("expected ASC or DESC")
            direction = tok.text.upper()
            parser.i += 1
        if parser.peek() is not None:
            raise parser.error("unexpected text after the sort direction")
        out.append((field, direction == "DESC"))
    return out


def _ordered(column: Any, descending: bool) -> Any:
    return (column.desc() if descending else column.asc()).nulls_last()


@operation("GET /runs")
def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    *,
    offset: int = 0,
    lifecycle: str = "active",
    workspace: Workspace | None = None,
) -> list[Run]:
    """Runs of the experiments (names or ids; None for all) that match ``filter``, ordered.

    ``offset`` skips that many matches (for paging); ``lifecycle`` is ``active`` (the default),
    ``deleted`` or ``all``.

    Example::

        cauce.search_runs("churn", filter="metrics.auc > 0.9", order_by=["metrics.auc DESC"])
    """
    from sqlalchemy import select

    from cauce.tracking.runs import load_runs

    ws = workspace or current()
    if filter is not None and not isinstance(filter, str):
        raise InvalidInput(f"filter must be a string, got {type(filter).__name__}")
    check_limit(max_results, "max_results")
    if isinstance(order_by, str):
        order_by = [order_by]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")
    if lifecycle not in ("active", "deleted", "all"):
        raise InvalidInput(f"lifecycle must be active, deleted or all, not {lifecycle!r}")
    order = _order_fields(order_by or [])
    scope = []
    if lifecycle != "all":
        scope.append(runs.c.lifecycle_stage == lifecycle)
    matches = parse_filter(filter) if filter and filter.strip() else None
    with ws.store.read() as conn:
        ids = None
        if experiment is not None:
            ids = _experiment_ids(conn, [experiment] if isinstance(experiment, str) else experiment)
            scope.append(runs.c.experiment_id.in_(ids))
        where = scope if matches is None else [*scope, matches]
        rows = None
        if order and order[0][0].kind == "metrics" and _walkable(conn, ids):
            rows = _walk(conn, order, where, max_results, offset)
        if rows is None:
            query = select(runs).where(*where).order_by(*_tail_order(order))
            rows = list(conn.execute(query.limit(max_results).offset(offset)).all())
        return load_runs(conn, rows)


def runs_frame(found: Sequence[Run]) -> pd.DataFrame:
    """Runs as a DataFrame laid out as MLflow's ``search_runs`` lays it out (a row per run)."""
    import pandas as pd

    def keys(part: str) -> list[str]:
        return sorted({key for run in found for key in getattr(run.data, part)})

    def times(values: list[int | None]) -> pd.Series:
        return pd.to_datetime(pd.Series(values, dtype="Int64"), unit="ms", utc=True)

    columns: dict[str, Any] = {
        "run_id": [r.info.run_id for r in found],
        "experiment_id": [r.info.experiment_id for r in found],
        "run_name": [r.info.run_name for r in found],
        "status": [r.info.status for r in found],
        "start_time": times([r.info.start_time for r in found]),
        "end_time": times([r.info.end_time for r in found]),
        "user_id": [r.info.user_id for r in found],
        "parent_run_id": [r.info.parent_run_id for r in found],
        "artifact_uri": [r.info.artifact_uri for r in found],
    }
    for key in keys("metrics"):
        columns[f"metrics.{key}"] = pd.Series(
            [r.data.metrics.get(key, math.nan) for r in found], dtype="float64"
        )
    for part in ("params", "tags"):
        for key in keys(part):
            columns[f"{part}.{key}"] = [getattr(r.data, part).get(key) for r in found]
    return pd.DataFrame(columns)


def _experiment_ids(conn: Connection, names: Sequence[str]) -> list[str]:
    """The ids of experiments given by name or id; NotFound names the missing ones."""
    from sqlalchemy import or_, select

    names = list(names)
    found = conn.execute(
        select(experiments.c.id, experiments.c.name).where(
            or_(experiments.c.id.in_(names), experiments.c.name.in_(names))
        )
    ).all()
    known = {r.id for r in found} | {r.name for r in found}
    missing = [n for n in names if n not in known]
    if missing:
        raise NotFound(f"experiment {', '.join(map(repr, missing))} does not exist")
    return [r.id for r in found]


def _tail_order(order: list[tuple[Field, bool]]) -> list[Any]:
    """ORDER BY for ``order``, then newest first and by id, so that pages are stable."""
    return [_ordered(_column(f), d) for f, d in order] + [runs.c.start_time.desc(), runs.c.id]


# Ordered by a metric, a search can walk the metric's values in index order and stop after a
# page of matches, instead of computing every searched run's latest value and sorting them all.
# The walk is bounded: it passes only the best ``wanted * WALK_ROWS[i]`` values of the metric
# (every run's, every step's, of every experiment), the larger bound when the smaller held no
# full page; when none does, the plain plan answers. (PostgreSQL evaluates every row within the
# bound before sorting, hence the small first bound.) Below PLAIN_UP_TO searched runs the plain
# plan is cheap enough on its own.
WALK_ROWS = (4, 32)
PLAIN_UP_TO = 2_000


def _walkable(conn: Connection, experiment_ids: list[str] | None) -> bool:
    from sqlalchemy import func, literal, select

    searched = select(literal(1)).select_from(runs)
    if experiment_ids is not None:
        searched = searched.where(runs.c.experiment_id.in_(experiment_ids))
    bounded = searched.limit(PLAIN_UP_TO).subquery()
    return bool(conn.execute(select(func.count()).select_from(bounded)).scalar_one() >= PLAIN_UP_TO)


def _walk(
    conn: Connection, order: list[tuple[Field, bool]], where: list[Any], limit: int, offset: int
) -> list[Any] | None:
    """One page of runs ordered by a metric, found among the runs with the metric's best values
    (see WALK_ROWS); None when those hold no full page."""
    from sqlalchemy import select

    (field, descending), rest = order[0], order[1:]
    m, later = metrics.alias("m"), metrics.alias("later")
    values = (
        select(m.c.value)
        .where(m.c.key == field.key, m.c.is_nan.is_(False))
        .order_by(m.c.value.desc() if descending else m.c.value.asc())
    )
    # A scalar subquery, evaluated per row walked: as NOT EXISTS, PostgreSQL hashes every row
    # of the metric first.
    latest = m.c.id == (
        select(later.c.id)
        .where(later.c.run_id == m.c.run_id, later.c.key == m.c.key)
        .order_by(later.c.step.desc(), later.c.timestamp.desc(), later.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        values.with_only_columns(*runs.c)
        .join(runs, runs.c.id == m.c.run_id)
        .where(latest, *where)
        .order_by(*_tail_order(rest))
        .limit(limit)
        .offset(offset)
    )
    for rows_per_match in WALK_ROWS:
        at = values.offset(rows_per_match * (offset + limit) - 1).limit(1)
        bound = conn.execute(at).scalar()
        if bound is None:  # fewer rows than that: walk them all
            rows = list(conn.execute(query).all())
            return rows if len(rows) == limit else None
        # Ties with the bound are all in, so that their order among them is exact.
        within = query.where(m.c.value >= bound if descending else m.c.value <= bound)
        rows = list(conn.execute(within).all())
        if len(rows) == limit:
            return rows
    return None
