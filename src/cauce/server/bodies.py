"""Reading a request's body within a limit, as every route that takes one does."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from cauce.errors import PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from starlette.requests import Request


async def read_body(request: Request, limit: int, *, gzip: bool = False) -> bytes:
    """The request's body, at most ``limit`` bytes (PayloadTooLarge past it); with ``gzip``,
    a body sent ``Content-Encoding: gzip`` is unpacked, to at most ``limit`` bytes too."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
        parts.append(chunk)
    raw = b"".join(parts)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        return raw
    if not gzip or encoding != "gzip":
        raise UnsupportedMediaType(
            f"the body's Content-Encoding is {encoding}; "
            + ("gzip or none" if gzip else "only an unencoded body")
            + " is taken here"
        )
    unpacker = zlib.decompressobj(wbits=31)
    try:
        unpacked = unpacker.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise UnsupportedMediaType(f"the body is not valid gzip: {exc}") from None
    if len(unpacked) > limit or unpacker.unconsumed_tail:
        raise PayloadTooLarge(f"the body unpacks to over the limit of {limit} bytes")
    return unpacked
