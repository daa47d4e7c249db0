"""The floor of any Python gateway: a process that only pipes bytes between client and upstream.

Each accepted connection gets its own connection to the upstream, and bytes are copied both ways
as they arrive (asyncio streams on uvloop's event loop when it is installed, as uvicorn's
``loop="auto"`` picks for Cauce's router; the standard loop with ``--asyncio``): no
HTTP parsing, no authentication, no routing, no accounting. Whatever latency it adds over
calling the upstream directly is what one more hop through a Python process costs on this
machine, before a gateway does any work of its own. ``gateway_overhead.py --floor`` runs it
beside Cauce's gateway in the same load.

Example::

    python benchmarks/bare_relay.py --port 9000 --upstream-port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

CHUNK = 65536


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until the reading side closes; then close the writing side."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(port: int, upstream_port: int) -> None:
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    server = await asyncio.start_server(relay, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--asyncio", action="store_true", help="the standard loop, not uvloop")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is None or args.asyncio:
        asyncio.run(serve(args.port, args.upstream_port))
    else:
        uvloop.run(serve(args.port, args.upstream_port))


if __name__ == "__main__":
    main()
