"""Deployments the router runs itself (``runs_in: router``): a GenAI deployment's app called in
the router's process, behind the interface of a deployment's address
(:class:`~cauce.serving.upstream.Upstream`: ``open``, ``request``, ``close``).

For a connection or a prompt, which only relay an upstream's answer, this saves the hop to a
worker process (an HTTP request and every streamed event written and read once more); the
price is that its filters and relaying share the router's event loop. Flows and LLMs compute:
they always run in workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from cauce.serving.upstream import Opened, Reply, UpstreamError, read_whole

__all__ = ["InProcess"]

_END = object()


class InProcess:
    """One deployment's ASGI app, called like a deployment's address."""

    def __init__(self, app: Any, name: str) -> None:
        self.app = app
        self.url = f"router://{name}"  # shown where a deployment's URL would be

    async def open(
        self,
        method: bytes,
        path: bytes,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: float,
    ) -> Opened:
        """Call the app; return once its answer's head (and a whole body) is there."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = asyncio.Event()
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            await queue.put(message)

        raw_path, _, query = path.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.decode(),
            "path": raw_path.decode(),
            "raw_path": raw_path,
            "query_string": query,
            "headers": [(k.lower(), v) for k, v in headers],
            "client": ("127.0.0.1", 0),
            "server": ("router", 0),
        }

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:  # what a worker would answer with a broken connection
                await queue.put(exc)
            finally:
                await queue.put(_END)

        task = asyncio.get_running_loop().create_task(run())
        try:
            async with asyncio.timeout(timeout):
                start = await _next(queue)
                if start["type"] != "http.response.start":
                    raise UpstreamError(f"{self.url}: no response head")
                first = await _next(queue)
        except BaseException:
            gone.set()
            task.cancel()
            raise
        reply_headers = {bytes(k).lower(): bytes(v) for k, v in start.get("headers", [])}
        if not first.get("more_body"):
            return Opened(start["status"], reply_headers, first.get("body", b""), self, None)  # type: ignore[arg-type]
        return _Streamed(
            start["status"], reply_headers, None, self, None, queue, first["body"], gone, task
        )

    async def request(
        self,
        method: bytes,
        path: bytes,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: float,
    ) -> Reply:
        """Call the app and read its whole answer."""
        async with asyncio.timeout(timeout):
            return await read_whole(await self.open(method, path, body, headers, timeout))

    async def close(self) -> None:
        """Let go of the app's connections."""
        close = getattr(self.app, "close", None)
        if close is not None:
            await close()


class _Streamed(Opened):
    """A streamed answer of an in-process app: its body messages as they are sent."""

    def __init__(
        self,
        status: int,
        headers: dict[bytes, bytes],
        body: bytes | None,
        upstream: Any,
        conn: Any,
        queue: asyncio.Queue[Any],
        first: bytes,
        gone: asyncio.Event,
        task: asyncio.Task[None],
    ) -> None:
        super().__init__(status, headers, body, upstream, conn)
        self._queue, self._first, self._gone, self._task = queue, first, gone, task
        self._done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        while True:
            message = await _next(self._queue)
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body"):
                self._done = True
                return

    def close(self) -> None:
        if not self._done:  # the caller has gone: so has the app's caller
            self._gone.set()
            with contextlib.suppress(RuntimeError):
                self._task.cancel()


async def _next(queue: asyncio.Queue[Any]) -> dict[str, Any]:
    item = await queue.get()
    if item is _END:
        raise UpstreamError("the deployment ended its answer early")
    if isinstance(item, BaseException):
        raise UpstreamError(f"the deployment failed: {type(item).__name__}: {item}")
    return dict(item)
