"""Stopping background tasks for sure.

``task.cancel()`` once is not enough here: Python 3.11's ``asyncio.wait_for``, which redis-py
wraps around every socket write when a socket timeout is set, swallows a cancellation that
lands just as the write it waits for completes. A loop that talks to Redis (a heartbeat, a
bind supervisor) then goes on for ever, and whoever awaits it after cancelling it hangs: a
SIGTERMed worker that never exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_SECONDS = 0.1  # how long a cancelled task gets before it is cancelled again


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and return once every one is done, cancelling again any that is not
    done shortly after (a cancellation it swallowed). Their results and errors are dropped."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    await asyncio.gather(*tasks, return_exceptions=True)


def accept_cancellation() -> None:
    """Mark the current task's cancellation as handled, before it goes on to clean up.

    Call it where a task catches its own cancellation and still has work to do (drain, hand
    leases over, close). Up to Python 3.11.2 (Debian 12's python3), ``asyncio.timeout`` turns
    its own expiry into TimeoutError only when the task has no cancellation pending at all; in
    a task that was cancelled and carried on, every expiry then raises CancelledError instead.
    redis-py checks a pooled connection with a zero timeout, so the cleanup's first Redis call
    failed: a SIGTERMed worker left outcomes unrecorded (sent again by another worker) and a
    stopped webhook deliverer kept its leases. Later 3.11 releases count only cancellations
    that arrive inside the timeout, so this is harmless there.
    """
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()
