"""Check suites: the declarative rules a dataset version must meet, as pydantic models.

A suite is YAML (or a dict, or a :class:`CheckSuite`)::

    kind: CheckSuite
    name: customers-silver
    checks:
      - not_null: {column: customer_id}
      - unique: {column: customer_id}
      - range: {column: age, min: 18, max: 120}
        mostly: 0.99
      - sql: "monthly_charges >= 0 AND contract IS NOT NULL"
        severity: warn

Each entry holds exactly one check kind, plus ``mostly`` (the fraction of rows that must pass),
``severity`` (``error`` fails the quality bar, ``warn`` is only reported) and an optional
``name``. A bad suite fails with the field named (``checks.2.range.min: ...``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cauce.errors import InvalidInput
from cauce.specs import read_mapping
from cauce.validation import spec_errors

Severity = Literal["warn", "error"]
Scalar = str | int | float | bool

# Kinds evaluated row by row (a failing count over the rows), and over the whole table.
ROW_KINDS = ("not_null", "unique", "accepted_values", "range", "regex", "relationships", "sql")
TABLE_KINDS = ("row_count", "freshness")
KINDS = ROW_KINDS + TABLE_KINDS

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnCheck(_Spec):
    """A check on one column."""

    column: str = Field(min_length=1)


class NotNull(ColumnCheck):
    """Every value of ``column`` is present."""


class Unique(ColumnCheck):
    """No non-null value of ``column`` appears twice (every row holding a repeat fails)."""


class AcceptedValues(ColumnCheck):
    """Every non-null value of ``column`` is one of ``values``."""

    values: list[Scalar] = Field(min_length=1)


class Range(ColumnCheck):
    """Every non-null value of ``column`` lies between ``min`` and ``max``."""

    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Regex(ColumnCheck):
    """Every non-null value of ``column`` (as text) matches ``pattern`` in full."""

    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class RowCount(_Spec):
    """The table has between ``min`` and ``max`` rows."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCount:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Freshness(ColumnCheck):
    """The newest value of the timestamp ``column`` is at most ``max_age`` old (``"7d"``)."""

    max_age: str

    @field_validator("max_age")
    @classmethod
    def _age(cls, value: str) -> str:
        if not _AGE.match(value):
            raise ValueError(f"{value!r} is not an age: write a number and s, m, h, d or w ('7d')")
        return value

    @property
    def max_age_seconds(self) -> float:
        """``max_age`` in seconds."""
        match = _AGE.match(self.max_age)
        assert match is not None  # checked by the validator
        return float(match.group(1)) * _AGE_SECONDS[match.group(2)]


class Relationships(ColumnCheck):
    """Every non-null value of ``column`` exists in ``field`` of dataset ``to``."""

    to: str = Field(min_length=1, description="name@version, or name for the newest version")
    field: str = Field(min_length=1)


class Check(_Spec):
    """One entry of a suite: exactly one check kind, with its threshold and severity."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    mostly: float = Field(default=1.0, ge=0.0, le=1.0)
    severity: Severity = "error"
    not_null: NotNull | None = None
    unique: Unique | None = None
    accepted_values: AcceptedValues | None = None
    range: Range | None = None
    regex: Regex | None = None
    row_count: RowCount | None = None
    freshness: Freshness | None = None
    relationships: Relationships | None = None
    sql: str | None = Field(default=None, min_length=1, max_length=4000)

    @field_validator("sql")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        if value is not None:
            check_expression(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"each check holds exactly one of {', '.join(KINDS)}; this one has "
                + (", ".join(given) if given else "none")
            )
        if given[0] in TABLE_KINDS and self.mostly != 1.0:
            raise ValueError(f"mostly applies to row checks, not to {given[0]}")
        return self

    @property
    def kind(self) -> str:
        """Which check this is: ``not_null``, ``range``, ``sql``…"""
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> Any:
        """The kind's settings (a string for ``sql``)."""
        return getattr(self, self.kind)

    @property
    def column(self) -> str | None:
        """The column the check reads, if it reads one."""
        return getattr(self.spec, "column", None)

    def default_name(self) -> str:
        """``kind(column)``, or ``sql(expression)`` cut short."""
        if self.kind == "sql":
            text = " ".join(str(self.sql).split())
            return f"sql({text if len(text) <= 60 else text[:57] + '...'})"
        if self.kind == "relationships":
            assert self.relationships is not None
            rel = self.relationships
            return f"relationships({rel.column} -> {rel.to}.{rel.field})"
        return f"{self.kind}({self.column})" if self.column else self.kind


class CheckSuite(_Spec):
    """A named list of checks."""

    kind: Literal["CheckSuite"] = "CheckSuite"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    checks: list[Check] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> CheckSuite:
        explicit = [c.name for c in self.checks if c.name]
        repeated = sorted({n for n in explicit if explicit.count(n) > 1})
        if repeated:
            raise ValueError(f"check names must be unique; repeated: {', '.join(repeated)}")
        return self

    def check_names(self) -> list[str]:
        """Each check's name: its own, or ``kind(column)`` numbered when it repeats."""
        taken = {c.name for c in self.checks if c.name}
        names: list[str] = []
        for check in self.checks:
            name = check.name or check.default_name()
            base, n = name, 1
            while check.name is None and (name in names or name in taken):
                n += 1
                name = f"{base} #{n}"
            names.append(name)
        return names

    def sha256(self) -> str:
        """sha256 of the suite's canonical JSON: the same rules give the same hash."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_suite(suite: CheckSuite | dict[str, Any] | str | Path) -> CheckSuite:
    """A CheckSuite from itself, a dict, a YAML file path or a YAML string."""
    if isinstance(suite, CheckSuite):
        return suite
    data, where = read_mapping(suite, "check suite", missing=InvalidInput)
    if not isinstance(data, dict) and not isinstance(suite, (str, Path)):
        raise InvalidInput(
            f"a check suite must be a CheckSuite, a dict, a path or a YAML string, "
            f"got {type(suite).__name__}"
        )
    if not isinstance(data, dict):
        raise InvalidInput(f"{where} must be a mapping with kind, name and checks")
    try:
        return CheckSuite.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{where} is invalid: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as ``field.path: message`` pairs on one line."""
    return "; ".join(
        f"{where or 'suite'}: {message}" for where, message in spec_errors(exc, CheckSuite)
    )


def check_expression(text: str) -> None:
    """Accept a SQL boolean expression only: no statement separators, no comments.

    String literals and quoted identifiers may hold any character; outside them ``;``, ``--``
    and ``/*`` are refused, and parentheses must balance so that the expression cannot close
    the query it is placed in.
    """
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            end = i + 1
            while True:
                end = text.find(char, end)
                if end == -1:
                    raise ValueError("unterminated quote in the SQL expression")
                if end + 1 < len(text) and text[end + 1] == char:  # '' inside a literal
                    end += 2
                    continue
                break
            i = end + 1
            continue
        if char == ";":
            raise ValueError("a SQL check is one expression: ';' is not allowed")
        if text.startswith("--", i) or text.startswith("/*", i):
            raise ValueError("a SQL check is one expression: comments are not allowed")
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced ')' in the SQL expression")
        i += 1
    if depth != 0:
        raise ValueError("unbalanced '(' in the SQL expression")
