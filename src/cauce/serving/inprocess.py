"""Deployments the router runs itself (``runs_in: router``): a GenAI deployment's app called in
the router's process, behind the interface of a deployment's address
(:class:`~cauce.serving.upstream.Upstream`: ``open``, ``request``, ``close``).

For a connection or a prompt, which only relay an upstream's answer, this saves the hop to a
worker process (an HTTP request and every streamed event written and read once more): the
router calls the app's :meth:`~cauce.serving.genai.GenAIApp.handle` and reads a stream's
events straight from it. The price is that its filters and relaying share the router's event
loop. Flows and LLMs compute: they always run in workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from cauce.serving.upstream import Opened, Reply, UpstreamError, read_whole

__all__ = ["InProcess"]

# Streams a caller left before their end, being closed (held so that the tasks finish).
_closing: set[asyncio.Task[None]] = set()


class InProcess:
    """One GenAI deployment's app, called like a deployment's address."""

    def __init__(self, app: Any, name: str) -> None:
        self.app = app  # a GenAIApp
        self.url = f"router://{name}"  # shown where a deployment's URL would be

    async def open(
        self,
        method: bytes,
        path: bytes,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: float,
    ) -> Opened:
        """The app's answer: a whole body, or a stream whose first piece is there."""
        async with asyncio.timeout(timeout):
            answered = await self.app.handle(
                method.decode(), path.partition(b"?")[0].decode(), body, headers
            )
        reply_headers = {k.lower(): v for k, v in answered.headers}
        if answered.events is None:
            return Opened(answered.status, reply_headers, answered.body, self, None)  # type: ignore[arg-type]
        return _Streamed(answered.status, reply_headers, answered.events, self)

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
        await self.app.close()


class _Streamed(Opened):
    """A streamed answer of an in-process app: its events as the app yields them."""

    def __init__(
        self,
        status: int,
        headers: dict[bytes, bytes],
        events: AsyncGenerator[bytes, None],
        upstream: Any,
    ) -> None:
        super().__init__(status, headers, None, upstream, None)
        self._events = events
        self._done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._events:
                yield data
        except Exception as exc:  # what a worker's broken connection would be
            raise UpstreamError(f"the deployment failed: {type(exc).__name__}: {exc}") from None
        self._done = True

    def close(self) -> None:
        if self._done:
            return
        self._done = True  # the caller has gone: so has the app's caller
        with contextlib.suppress(RuntimeError):  # no loop: the process is ending
            task = asyncio.get_running_loop().create_task(_aclose(self._events))
            _closing.add(task)
            task.add_done_callback(_closing.discard)


async def _aclose(events: AsyncGenerator[bytes, None]) -> None:
    with contextlib.suppress(Exception):
        await events.aclose()
