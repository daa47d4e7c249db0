"""Checks on names, keys, cron expressions and specs that users pass, shared by every module."""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import types
import typing
from numbers import Real
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationError

from cauce.config import duration_ms
from cauce.errors import BadRequest, InvalidInput

MAX_KEY = 250
MAX_NAME = 255
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# 9000-01-01 UTC in ms: a cron's next time after any earlier time still has a calendar date.
MAX_TIME_MS = 221_845_392_000_000

# As in MLflow: letters, digits, _ - . space : / (so "train/loss" is a valid metric key).
_KEY = re.compile(r"^[\w\-. :/]+$")
# Names become parts of URIs (models:/churn/3) and paths, so they exclude separators.
_NAME = re.compile(r"^[\w][\w\-. ]*$")
# ``models:/churn@latest`` names the newest version, so "latest" cannot be an alias.
RESERVED_ALIASES = ("latest",)


def load_json(body: bytes | str) -> Any:
    """A request's JSON body as Python values; BadRequest (naming ``body``) when it is not JSON,
    nested too deep to read included (Python's parser raises RecursionError there)."""
    import json

    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(f"the body is not valid JSON: {exc}", details={"field": "body"}) from None


def check_key(key: Any, what: str = "key") -> str:
    """A metric, param or tag key: non-empty, at most 250 characters, no path escapes."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{what} must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"{what} is {len(key)} characters long; the limit is {MAX_KEY}")
    if not _KEY.match(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(
            f"{what} {key!r} has characters that are not allowed",
            hint="use letters, digits, underscores, dashes, periods, spaces, colons and slashes",
        )
    return key


def check_tags(values: Any) -> dict[str, str]:
    """Tags of a run or an experiment: a mapping of checked keys to values as text."""
    from collections.abc import Mapping

    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"tags must be a mapping of key to value, got {type(values).__name__}",
            details={"field": "tags"},
        )
    return {
        check_key(k, "tag key"): check_text(v, MAX_TAG_VALUE, f"tag {k!r}")
        for k, v in values.items()
    }


def check_name(name: Any, what: str = "name") -> str:
    """An entity name (experiment, model, dataset, alias): no path separators."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{what} is {len(name)} characters long; the limit is {MAX_NAME}")
    if "/" in name or "\\" in name:
        raise InvalidInput(f"{what} {name!r} must not contain a path separator ('/' or '\\')")
    if not _NAME.match(name):
        raise InvalidInput(
            f"{what} {name!r} has characters that are not allowed",
            hint="start with a letter, digit or underscore; then letters, digits, _ - . or space",
        )
    return name


def check_alias(alias: Any) -> str:
    """A registry alias (``champion``): a name that does not read as a version."""
    check_name(alias, "alias")
    if alias.isdigit() or alias.lower() in RESERVED_ALIASES:
        raise InvalidInput(f"{alias!r} cannot be an alias: it reads as a version")
    return str(alias)


def check_metric_value(key: str, value: Any) -> float:
    """A metric value as a float; NaN and infinities are kept."""
    if isinstance(value, bool) or not isinstance(value, Real):
        # numpy scalars register as numbers.Real; strings and None do not.
        raise InvalidInput(
            f"metric {key!r} must be a number, got {type(value).__name__} {_short(value)}"
        )
    try:
        result = float(value)
    except (OverflowError, ValueError):
        # A Python int past the float range (10**400) cannot be stored as a metric.
        raise InvalidInput(
            f"metric {key!r} is too large to store as a 64-bit float: {_short(value)}"
        ) from None
    if math.isnan(result):
        return math.nan
    return result


def check_int(value: Any, what: str) -> int:
    """An integer argument such as a step or a timestamp."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                return check_int(int(value), what)
        except ImportError:  # pragma: no cover
            pass
        raise InvalidInput(f"{what} must be an integer, got {_short(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        # Steps and timestamps are BIGINT columns; a larger value would fail in the database.
        raise InvalidInput(f"{what} must fit in 64 bits, got {_short(value)}")
    return value


def check_time_ms(value: Any, what: str) -> int:
    """A time in milliseconds since the epoch (UTC), from 1970 to the year 9000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_TIME_MS:
        raise InvalidInput(
            f"{what} must be a time in milliseconds from 1970 to the year 9000, "
            f"got {_short(value)}",
            details={"field": what},
        )
    return value


def check_limit(limit: Any, field: str = "limit") -> int:
    """A ``limit`` argument (or ``field``, e.g. ``max_results``): how many at most, 1 or more."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(
            f"{field} must be an integer of 1 or more, got {_short(limit)}",
            details={"field": field},
        )
    return limit


def check_text(value: Any, limit: int, what: str) -> str:
    """A parameter or tag value, turned into a string within the length limit."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text)} characters long; the limit is {limit}")
    return text


def check_cron(expression: str | None) -> str | None:
    """A cron expression (five fields, UTC) as given, or None; a pydantic validator's body."""
    from croniter import croniter

    if expression is not None and not croniter.is_valid(expression):
        raise ValueError(f"not a cron expression: {expression!r}")
    return expression


def next_cron_time(expression: str, after_ms: int) -> int:
    """The first time strictly after ``after_ms`` that the cron expression names (UTC, ms)."""
    from croniter import croniter

    start = dt.datetime.fromtimestamp(after_ms / 1000, dt.UTC)
    following: dt.datetime = croniter(expression, start).get_next(dt.datetime)
    return int(following.timestamp() * 1000)


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for error messages."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits() has no repr
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


Duration = Annotated[int, BeforeValidator(duration_ms)]


def spec_errors(exc: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """Pydantic's errors as ``(field path, message)`` pairs, in its order ("" for the top).

    Fields the model does not have are one pair per mapping, naming each with the nearest
    field it does have (``trafic: unknown field; did you mean traffic?``) or, when one is near
    none, the fields it takes: a misspelt key in hand-written YAML is the commonest mistake.
    """
    pairs: list[tuple[tuple[Any, ...], str | list[str]]] = []
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc:
            if loc[:-1] not in unknown:
                unknown[loc[:-1]] = []
                pairs.append((loc[:-1], unknown[loc[:-1]]))
            unknown[loc[:-1]].append(str(loc[-1]))
        else:
            pairs.append((loc, str(err["msg"]).removeprefix("Value error, ")))
    described: list[tuple[str, str]] = []
    listed: set[tuple[str, ...]] = set()
    for loc, message in pairs:
        if isinstance(message, list):
            loc, message = _unknown(model, loc, message, listed)
        described.append((".".join(map(str, loc)), message))
    return described


def _unknown(
    model: type[BaseModel], parent: tuple[Any, ...], names: list[str], listed: set[tuple[str, ...]]
) -> tuple[tuple[Any, ...], str]:
    known = _fields_at(model, parent)
    near = {n: difflib.get_close_matches(n, known, n=1, cutoff=0.6) for n in names}
    if len(names) == 1:
        where, message = (*parent, names[0]), "unknown field"
        if near[names[0]]:
            return where, f"{message}; did you mean {near[names[0]][0]}?"
    else:
        where = parent
        message = "unknown fields " + ", ".join(
            f"{n} (did you mean {near[n][0]}?)" if near[n] else n for n in names
        )
    if known and not all(near.values()) and tuple(known) not in listed:
        listed.add(tuple(known))  # said once per message, not once per mapping
        message += f"; the fields here are {', '.join(known)}"
    return where, message


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at ``path`` inside ``model``; [] when unsure."""
    options = _options(model)
    for step in path:
        following: list[Any] = []
        for option in options:
            if isinstance(step, str) and _is_model(option):
                by_name = {f.alias or n: f for n, f in option.model_fields.items()}
                if step in by_name:
                    following += _options(by_name[step].annotation)
                elif step == option.__name__:  # pydantic names the union member it tried
                    following.append(option)
            elif isinstance(step, str) and typing.get_origin(option) is dict:
                following += _options(typing.get_args(option)[1])
            elif isinstance(step, int) and typing.get_origin(option) in (list, tuple, set):
                following += _options(typing.get_args(option)[0])
        options = following
    models = [o for o in options if _is_model(o)]
    if len(models) != 1:
        return []
    return [f.alias or n for n, f in models[0].model_fields.items()]


def _options(annotation: Any) -> list[Any]:
    """The types an annotation allows: unions and ``Annotated`` opened up."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [o for arg in typing.get_args(annotation) for o in _options(arg)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
