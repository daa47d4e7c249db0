"""MLflow's wire format: reading requests, writing entities and errors as its client expects.

Requests come as JSON bodies (POST, PATCH, DELETE) or query strings (GET), with protobuf field
names; answers are JSON objects with the same names, int64 values as numbers, and errors as
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}`` with the HTTP status MLflow gives
that code, so that the client raises its usual ``MlflowException``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from cauce.errors import (
    AlreadyExists,
    BackendError,
    BadRequest,
    CauceError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from cauce.validation import load_json

# MLflow's error codes and the HTTP status its server answers them with.
STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


class MlflowError(Exception):
    """An error answered in MLflow's shape."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS[code]


def unsupported(what: str, hint: str = "") -> MlflowError:
    """NOT_IMPLEMENTED for an MLflow call Cauce does not map."""
    return MlflowError("NOT_IMPLEMENTED", f"cauce server does not support {what}{hint}")


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of an error."""
    if isinstance(exc, MlflowError):
        return exc.status, {"error_code": exc.code, "message": exc.message}
    if isinstance(exc, CauceError):
        code = _code_of(exc)
        message = str(exc)
        return STATUS[code], {"error_code": code, "message": message}
    return 500, {"error_code": "INTERNAL_ERROR", "message": f"internal error: {type(exc).__name__}"}


def _code_of(exc: CauceError) -> str:
    if isinstance(exc, NotFound):
        return "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, AlreadyExists):
        return "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, (InvalidInput, Conflict)):
        return "INVALID_PARAMETER_VALUE"
    if isinstance(exc, Unauthorized):
        return "UNAUTHENTICATED"
    if isinstance(exc, Forbidden):
        return "PERMISSION_DENIED"
    if isinstance(exc, RateLimited):
        return "REQUEST_LIMIT_EXCEEDED"
    if isinstance(exc, BackendError):
        return "TEMPORARILY_UNAVAILABLE"
    return "INTERNAL_ERROR"


class Params:
    """A request's fields: a JSON body, or a query string whose repeated keys are lists."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    @classmethod
    def from_body(cls, body: bytes) -> Params:
        """Fields of a JSON body (an empty body has none)."""
        if not body.strip():
            return cls({})
        try:
            values = load_json(body)
        except BadRequest as exc:
            raise MlflowError("BAD_REQUEST", exc.message) from None
        if not isinstance(values, dict):
            raise MlflowError("BAD_REQUEST", "the request body must be a JSON object")
        return cls(values)

    @classmethod
    def from_query(cls, items: list[tuple[str, str]]) -> Params:
        """Fields of a query string; a key given twice is a list."""
        values: dict[str, Any] = {}
        for key, value in items:
            if key in values:
                old = values[key]
                values[key] = [*old, value] if isinstance(old, list) else [old, value]
            else:
                values[key] = value
        return cls(values)

    def text(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        """A string field; missing or empty is ``default`` (or an error when required)."""
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'"
                )
            return default
        if isinstance(value, list):
            value = value[0]
        if not isinstance(value, str):
            value = str(value) if isinstance(value, (int, float)) else value
        if not isinstance(value, str):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"parameter '{name}' must be a string")
        return value

    def integer(self, name: str, *, default: int | None = None) -> Any:
        """An integer field (a number or a string of digits)."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, list):
            value = value[0]
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"parameter '{name}' must be an integer, got {value!r}"
            ) from None

    def real(self, name: str) -> float:
        """A required number field; ``"NaN"`` and ``"Infinity"`` strings are numbers too."""
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'"
            )
        try:
            return float(value)
        except (TypeError, ValueError):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"parameter '{name}' must be a number, got {value!r}"
            ) from None

    def repeated(self, name: str) -> list[Any]:
        """A repeated field."""
        value = self.values.get(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def key_values(self, name: str) -> dict[str, str]:
        """A repeated ``{key, value}`` field as a dict."""
        out = {}
        for item in self.repeated(name):
            if not isinstance(item, dict) or "key" not in item:
                raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' entries need a key")
            out[str(item["key"])] = "" if item.get("value") is None else str(item["value"])
        return out


def pairs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A dict as MLflow's repeated ``{key, value}``."""
    return [{"key": k, "value": v} for k, v in values.items()]


def registered_model(
    name: str,
    created_at: int,
    updated_at: int,
    tags: Mapping[str, str],
    aliases: Mapping[str, int],
    description: str | None,
    latest: dict[str, Any] | None,
) -> dict[str, Any]:
    """MLflow's ``RegisteredModel``; ``latest`` its newest version, as :func:`model_version`
    writes it."""
    out: dict[str, Any] = {
        "name": name,
        "creation_timestamp": created_at,
        "last_updated_timestamp": updated_at,
        "tags": pairs(tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in aliases.items()],
        "latest_versions": [latest] if latest is not None else [],
    }
    if description:
        out["description"] = description
    return out


def model_version(
    name: str,
    version: int,
    created_at: int,
    user: str,
    source: str,
    tags: Mapping[str, str],
    aliases: list[str],
    description: str | None,
) -> dict[str, Any]:
    """MLflow's ``ModelVersion``: always ready, in no stage (Cauce has aliases)."""
    out: dict[str, Any] = {
        "name": name,
        "version": str(version),
        "creation_timestamp": created_at,
        "last_updated_timestamp": created_at,
        "user_id": user,
        "current_stage": "None",
        "source": source,
        "status": "READY",
        "tags": pairs(tags),
        "aliases": aliases,
    }
    if description:
        out["description"] = description
    return out


def number(value: float) -> Any:
    """A float as MLflow writes it in JSON: NaN and infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def page(
    p: Params, items: list[Any], render: Callable[[Any], Any], field: str, *, default_max: int
) -> dict[str, Any]:
    """One page of ``items`` (rendered) under ``field``, with the next page's token if any."""
    limit = p.integer("max_results", default=default_max)
    offset = read_page_token(p.text("page_token"))
    out: dict[str, Any] = {field: [render(i) for i in items[offset : offset + limit]]}
    if len(items) > offset + limit:
        out["next_page_token"] = page_token(offset + limit)
    return out


def page_token(offset: int) -> str:
    """An opaque page token for the next page at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def read_page_token(token: str | None) -> int:
    """The offset a page token stands for (0 without one)."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid page token {token!r}")


def matches(
    fields: Mapping[str, str | None], text: str, tags: Mapping[str, str] | None = None
) -> bool:
    """Whether ``fields`` (and ``tags``, as ``tags.<key>``) pass a simple MLflow filter:
    comparisons ``field = 'x'`` (``!=``, ``LIKE``, ``ILIKE``, ``IN ('a', 'b')``) joined by AND,
    as its registry and experiment searches allow."""
    import re

    from cauce.tracking.search import tokenize

    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        tokens = tokenize(part)
        if len(tokens) > 3 and tokens[0].text.endswith(".") and tokens[1].kind == "quoted":
            merged = tokens[0].text + tokens[1].text[1:-1]
            tokens = [tokens[0].__class__("word", merged, 0), *tokens[2:]]
        if len(tokens) < 3:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"unsupported filter {text!r}")
        name = tokens[0].text.removeprefix("attributes.").removeprefix("attribute.")
        head, _, key = name.partition(".")
        if head in ("tag", "tags") and key:
            actual = (tags or {}).get(key) or ""
        elif name in fields:
            actual = fields[name] or ""
        else:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"cannot filter by {tokens[0].text}; use {', '.join(sorted(fields))} or tags",
            )
        op = tokens[1].text.upper()
        values = [t.text[1:-1].replace("''", "'") for t in tokens[2:] if t.kind == "string"]
        if not values or (op != "IN" and len(tokens) != 3):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"unsupported filter {text!r}")
        if not _compare(actual, op, values):
            return False
    return True


def _compare(actual: str, op: str, values: list[str]) -> bool:
    import fnmatch

    value = values[0]
    pattern = value.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
    pattern = pattern.replace("%", "*").replace("_", "?")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "LIKE":
        return fnmatch.fnmatchcase(actual, pattern)
    if op == "ILIKE":
        return fnmatch.fnmatchcase(actual.lower(), pattern.lower())
    if op == "IN":
        return actual in values
    raise MlflowError("INVALID_PARAMETER_VALUE", f"unsupported operator {op!r}")
