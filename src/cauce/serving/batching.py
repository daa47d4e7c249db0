"""Adaptive batching: requests that arrive close together are scored in one model call.

A request waits at most ``max_latency_ms`` for others to join it, and a batch holds at most
``max_batch_size`` rows (a single larger request is scored alone). The model runs on one thread
beside the event loop, so that the next batch fills while the current one is scored: under load
batches grow by themselves, and a lone request pays at most the latency bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cauce.serving.protocols import ScoringInput, concat_inputs, split_predictions


@dataclass
class _Pending:
    item: ScoringInput
    future: asyncio.Future[tuple[Any, int]]


class Batcher:
    """Collects scoring inputs into batches for one model."""

    def __init__(
        self, predict: Callable[[Any], Any], *, max_batch_size: int, max_latency_ms: float
    ) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._carry: _Pending | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cauce-batch")
        self._task: asyncio.Task[None] | None = None

    async def score(self, item: ScoringInput) -> tuple[Any, int]:
        """The predictions for one request, and how many requests shared its model call."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(loop)
            try:
                data = concat_inputs([p.item for p in batch]) if len(batch) > 1 else None
                predictions = await loop.run_in_executor(
                    self._executor, self.predict, data if data is not None else batch[0].item.data
                )
                parts = (
                    split_predictions(predictions, [p.item.rows for p in batch])
                    if len(batch) > 1
                    else [predictions]
                )
            except Exception as exc:  # the model failed on the batch: each request learns why
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, part in zip(batch, parts, strict=True):
                if not pending.future.done():  # its client may have gone away
                    pending.future.set_result((part, len(batch)))

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Pending]:
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, rows = [first], first.item.rows
        deadline = loop.time() + self.max_latency
        while rows < self.max_batch_size:
            try:
                if self._queue.empty():
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    pending = await asyncio.wait_for(self._queue.get(), left)
                else:
                    pending = self._queue.get_nowait()
            except TimeoutError:
                break
            if rows + pending.item.rows > self.max_batch_size:
                self._carry = pending  # it starts the next batch
                break
            batch.append(pending)
            rows += pending.item.rows
        return batch

    async def close(self) -> None:
        """Stop collecting; requests still waiting are cancelled."""
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
