"""Micro-batching: many concurrent callers, one Redis round trip per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """``await batcher.put(item)`` returns that item's result from a batched ``flush`` call.

    Items that arrive while a flush is in flight form the next batch, so the batch size grows
    with load by itself and a lone item is never delayed by a timer.
    """

    def __init__(
        self, flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_size: int = 1000
    ) -> None:
        self._flush = flush
        self._max = max_size
        self._items: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the first caller's, asked once

    async def put(self, item: T) -> R:
        """Queue ``item`` and wait for its result."""
        return await self.submit(item)

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the future of its result (for callers that need no task to wait)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._items.append((item, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return fut

    async def _run(self) -> None:
        while self._items:
            batch, self._items = self._items[: self._max], self._items[self._max :]
            try:
                results = await self._flush([item for item, _ in batch])
            except Exception as exc:  # handed to every caller of this batch
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
