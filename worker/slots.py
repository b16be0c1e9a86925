"""A counting semaphore for the worker's per-message path (a channel's unrecorded slots).

asyncio.Semaphore looks the running loop up on every wait (a getpid() system call in Python
3.11) and, on every release, scans from the front of its waiters those already woken but not
yet run: a batch of outcomes recorded at once releases tens of slots in a row. Here a release
hands its slot to the first waiter still waiting (first come, first served) and the loop is
looked up once.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    """``await slots.take()`` … ``slots.give()``; at most ``size`` taken at once."""

    __slots__ = ("_free", "_loop", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None  # the first waiter's

    @property
    def free(self) -> int:
        """Slots nobody holds (0 while anyone waits)."""
        return self._free

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody waits for one; else False (no change)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot, behind those already waiting."""
        if self.take_now():
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.give()  # handed a slot, then cancelled before running: pass it on
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:  # give() already dropped it
                    pass
            raise

    def give(self) -> None:
        """Return a slot: to the first waiter still waiting, else to the free ones."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():  # a cancelled waiter's future is done
                fut.set_result(None)
                return
        self._free += 1
