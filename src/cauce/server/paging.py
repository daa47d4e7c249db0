"""Cursor pagination of the operations that answer a list.

Such a route takes ``page_size`` (default 1,000, at most 10,000) and ``page_token`` beside the
function's own arguments, and answers ``{"items": [...], "next_page_token": "..." | null}``.
A token is opaque to clients: where the next page starts, and a fingerprint of the query it
belongs to (a token sent with other arguments is refused). A function that pages itself
(``offset`` and ``max_results`` parameters, as ``search_runs``) gets the page pushed down into
its query; for the others the page is cut from the whole answer. ``max_results`` keeps its
meaning: the most items over all pages. The SDK's client follows the tokens and returns the
whole list, as a local call does.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from cauce.errors import InvalidInput
from cauce.operations import Operation

DEFAULT_PAGE = 1_000
MAX_PAGE = 10_000


def take_page(values: dict[str, Any]) -> tuple[int, int, str]:
    """Remove ``page_size`` and ``page_token`` from a request's values: (start, size, query)."""
    given = values.pop("page_size", DEFAULT_PAGE)
    token = values.pop("page_token", None)
    try:
        size = int(given)
    except (TypeError, ValueError):
        size = -1
    if not 1 <= size <= MAX_PAGE:
        raise InvalidInput(
            f"page_size must be an integer from 1 to {MAX_PAGE}, not {given!r}",
            details={"field": "page_size"},
        )
    query = _fingerprint(values)
    if token is None:
        return 0, size, query
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        start, belongs = int(decoded["start"]), str(decoded["query"])
    except Exception:
        raise InvalidInput(
            "page_token is not a token this server gave", details={"field": "page_token"}
        ) from None
    if belongs != query or start < 0:
        raise InvalidInput(
            "page_token belongs to another query: send the same arguments as for the first page",
            details={"field": "page_token"},
        )
    return start, size, query


def run_page(
    op: Operation,
    call: Callable[[dict[str, Any]], list[Any]],
    kwargs: dict[str, Any],
    start: int,
    size: int,
    query: str,
) -> dict[str, Any]:
    """Call the function for one page; the page's items (as JSON) and the next token."""
    if "offset" in op.params and "max_results" in op.params:
        cap = kwargs.get("max_results", op.signature.parameters["max_results"].default)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1:
            take = min(size, cap - start)
            if take <= 0:
                return {"items": [], "next_page_token": None}
            result = call(
                {**kwargs, "offset": kwargs.get("offset", 0) + start, "max_results": take + 1}
            )
            more = len(result) > take and start + take < cap
            items = result[:take]
        else:  # a bad cap: the function's own check says so
            items, more = call(kwargs), False
    else:
        result = call(kwargs)
        items, more = result[start : start + size], start + size < len(result)
    encoded = op.encode_result(items)
    following = _token(start + len(items), query) if more and items else None
    return {"items": encoded, "next_page_token": following}


def _token(start: int, query: str) -> str:
    raw = json.dumps({"start": start, "query": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _fingerprint(values: dict[str, Any]) -> str:
    canonical = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
