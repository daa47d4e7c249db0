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

from cauce.errors import CauceError, InvalidInput
from cauce.registry.signature import column_arrays
from cauce.serving.codec import ScoringInput, frame_from_arrays


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


def concat_inputs(inputs: list[ScoringInput]) -> Any:
    """The data of several requests as one batch: DataFrames row-wise, arrays along axis 0."""
    import numpy as np
    import pandas as pd

    if not inputs:
        raise InvalidInput("there is nothing to batch", details={"field": "inputs"})
    datas = [i.data for i in inputs]
    if len(datas) == 1:
        return datas[0]
    if all(isinstance(d, pd.DataFrame) for d in datas):
        names = datas[0].columns.tolist()
        if all(d.columns.tolist() == names for d in datas[1:]):
            parts = [column_arrays(d) for d in datas]
            if all(isinstance(a, np.ndarray) for part in parts for a in part):
                arrays = [np.concatenate(column) for column in zip(*parts, strict=True)]
                return frame_from_arrays(names, arrays, sum(len(d) for d in datas))
        return pd.concat(datas, ignore_index=True)
    if all(isinstance(d, np.ndarray) for d in datas):
        try:
            return np.concatenate(datas, axis=0)
        except ValueError as exc:
            raise InvalidInput(
                f"the requests cannot be batched: {exc}", details={"field": "inputs"}
            ) from None
    raise InvalidInput(
        "the requests cannot be batched: they mix tables and tensors",
        details={"field": "inputs"},
    )


def split_predictions(predictions: Any, sizes: list[int]) -> list[Any]:
    """Cut the predictions of a batch back into one piece per request, keeping their type."""
    import numpy as np
    import pandas as pd

    total = sum(sizes)
    bounds = []
    start = 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    if isinstance(predictions, dict):
        columns = {k: split_predictions(v, sizes) for k, v in predictions.items()}
        return [{k: parts[i] for k, parts in columns.items()} for i in range(len(sizes))]
    if isinstance(predictions, (pd.DataFrame, pd.Series)):
        _check_length(len(predictions), total)
        return [predictions.iloc[a:b] for a, b in bounds]
    if isinstance(predictions, (list, tuple)):
        _check_length(len(predictions), total)
        return [predictions[a:b] for a, b in bounds]
    array = predictions if isinstance(predictions, np.ndarray) else np.asarray(predictions)
    _check_length(len(array) if array.ndim else 0, total)
    return [array[a:b] for a, b in bounds]


def _check_length(got: int, want: int) -> None:
    if got != want:
        raise CauceError(
            f"the model returned {got} predictions for a batch of {want} rows",
            code="prediction-count-mismatch",
            details={"field": "predictions", "expected": want, "got": got},
        )
