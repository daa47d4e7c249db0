"""The floor of Cauce's serving stack: uvicorn and the router's upstream client, relaying only.

An ASGI application on uvicorn (configured as ``cauce endpoints serve`` configures it: uvloop
and httptools when installed, no access log) that reads the request, sends it to the upstream
with :class:`cauce.serving.upstream.Upstream` (the client the router uses for its deployments)
and passes the answer's chunks on as they come: no key, no parsing, no routing, no accounting,
no collector, no trace. What it adds over calling the upstream directly is what Cauce's
gateway costs before it does any work of its own. ``gateway_overhead.py --floor`` runs it
beside ``bare_relay.py`` (bytes piped, no HTTP at all) and Cauce's gateway in the same load.

Example::

    python benchmarks/bare_asgi_relay.py --port 9001 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
from typing import Any

from cauce.serving.http import read_body
from cauce.serving.upstream import Upstream


class Relay:
    """Every POST relayed to one upstream; GET answered with an empty list (health)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = Upstream(upstream)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'{"data": []}'})
            return
        body = await read_body(scope, receive, 1 << 20)
        headers = [(b"content-type", b"application/json")]
        path = scope["path"].encode()
        opened = await self.upstream.open(b"POST", path, body, headers, 30.0)
        content_type = opened.headers.get(b"content-type", b"application/json")
        start = {"type": "http.response.start", "status": opened.status,
                 "headers": [(b"content-type", content_type)]}  # fmt: skip
        if opened.body is not None:
            await send(start)
            await send({"type": "http.response.body", "body": opened.body})
            return
        await send(start)
        async for chunk in opened.chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="http://host:port of the upstream")
    args = parser.parse_args()
    uvicorn.run(Relay(args.upstream), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, lifespan="off", timeout_keep_alive=75)  # fmt: skip


if __name__ == "__main__":
    main()
