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
