"""The floor of Cauce's serving stack: uvicorn and the router's upstream client, relaying only.

An ASGI application on uvicorn (configured as ``cauce endpoints serve`` configures it: uvloop
and httptools when installed, no access log) that reads the request, sends it to the upstream
with :class:`cauce.serving.upstream.Upstream` (the client the router uses for its deployments)
and passes the answer's chunks on as they come: no key, no parsing, no routing, no accounting,
no collector, no trace. What it adds over calling the upstream directly is what Cauce's
gateway costs before it does any work of its own. ``gateway_overhead.py --floor`` runs it
beside ``bare_relay.py`` (bytes piped, no HTTP at all) and Cauce's gateway in the same load.

``--server granian-asgi`` (or ``granian-rsgi``, granian's own interface) serves the same relay
on granian, a Rust HTTP server for Python, instead of uvicorn: the measure of whether another
server lowers the floor.

Example::

    python benchmarks/bare_asgi_relay.py --port 9001 --upstream http://127.0.0.1:8000
    python benchmarks/bare_asgi_relay.py --port 9001 --upstream http://127.0.0.1:8000 \
        --server granian-rsgi
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
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


class RSGIRelay:
    """The same relay on granian's RSGI interface (no ASGI messages: the body in one call, the
    answer's chunks written to a stream transport)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = Upstream(upstream)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.method != "POST":
            protocol.response_bytes(200, [("content-type", "application/json")], b'{"data": []}')
            return
        body = await protocol()
        headers = [(b"content-type", b"application/json")]
        opened = await self.upstream.open(b"POST", scope.path.encode(), body, headers, 30.0)
        content_type = opened.headers.get(b"content-type", b"application/json").decode()
        if opened.body is not None:
            protocol.response_bytes(opened.status, [("content-type", content_type)], opened.body)
            return
        transport = protocol.response_stream(opened.status, [("content-type", content_type)])
        async for chunk in opened.chunks():
            await transport.send_bytes(chunk)


def granian_asgi() -> Relay:
    """The ASGI relay, built in granian's worker (``--factory``)."""
    return Relay(os.environ["RELAY_UPSTREAM"])


def granian_rsgi() -> RSGIRelay:
    """The RSGI relay, built in granian's worker (``--factory``)."""
    return RSGIRelay(os.environ["RELAY_UPSTREAM"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="http://host:port of the upstream")
    parser.add_argument(
        "--server", choices=("uvicorn", "granian-asgi", "granian-rsgi"), default="uvicorn"
    )
    args = parser.parse_args()
    if args.server != "uvicorn":
        interface = args.server.removeprefix("granian-")
        os.environ["RELAY_UPSTREAM"] = args.upstream
        command = [sys.executable, "-m", "granian", "--interface", interface,
                   "--host", "127.0.0.1", "--port", str(args.port), "--loop", "uvloop",
                   "--workers", "1", "--no-ws", "--log-level", "warning",
                   "--working-dir", str(Path(__file__).resolve().parent),
                   "--factory", f"bare_asgi_relay:granian_{interface}"]  # fmt: skip
        os.execv(sys.executable, command)
    import uvicorn

    uvicorn.run(Relay(args.upstream), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, lifespan="off", timeout_keep_alive=75)  # fmt: skip


if __name__ == "__main__":
    main()
