"""One supervisor for every long-lived task: a crash is logged and the task restarted.

A background loop (heartbeat, reaper, sweeper, a bind, a webhook lane) that ends on an error
nobody expected ends silently: the process looks alive and stops doing that job. Each such
loop runs under :func:`supervise`, which logs the crash at ERROR with its traceback and starts
the loop again after a jittered, bounded, growing delay. Cancellation ends it at once.

This is the one place that catches any ``Exception``: the loops themselves catch only the
errors they know what to do with (a Redis outage, a lost connection).

No task gives up and stops the process: every loop here can do its job again once the cause
goes away (Redis back, a fixed receiver), while stopping would drop binds and submits in
flight. Where going on would be unsafe, the loop's owner decides what stops; the dispatcher,
for one, submits nothing while its heartbeat is not written (see ``worker.claimguard``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("smsgw.supervise")


def backoff(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter (between ``low`` and a ceiling that doubles with
    each ``attempt`` up to ``high``), so many processes hit by one cause never retry in step."""
    return rng.uniform(low, min(high, low * 2 ** min(attempt, 16)))


@dataclass(frozen=True, slots=True)
class Restart:
    """When a crashed task starts again: after a delay drawn between ``low`` and a ceiling
    that doubles with each crash in a row, up to ``high`` (seconds). A run that lasted
    ``healthy_seconds`` was a recovery: the next crash starts the delays from ``low`` again."""

    low: float = 0.1
    high: float = 30.0
    healthy_seconds: float = 60.0

    def delay(self, crashes: int, rng: random.Random) -> float:
        """The pause before restart number ``crashes`` (1 for the first) of a crash loop."""
        return backoff(crashes - 1, self.low, max(self.low, self.high), rng)


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    restart: Restart = Restart(),
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> None:
    """Await ``run()`` until it returns (the task is done) or this is cancelled; restart it
    after any exception, logged once at ERROR with its traceback. ``sleep``, ``clock`` and
    ``rng`` are seams for tests."""
    rng = rng or random.Random()
    crashes = 0
    while True:
        started = clock()
        try:
            await run()
            return
        except Exception:  # the one broad catch: see the module docstring
            if clock() - started >= restart.healthy_seconds:
                crashes = 0
            crashes += 1
            delay = restart.delay(crashes, rng)
            log.error("%s crashed (%d in a row); restarting in %.2fs", name, crashes, delay,
                      exc_info=True)
        await sleep(delay)


def stop_on_crash(task: asyncio.Task[object], name: str, stop: Callable[[], object]) -> None:
    """For a task its owner cannot go on without (a session's timer, say): if it ends with an
    exception, log it at ERROR with its traceback and call ``stop()`` (which should end the
    owner, whose own supervisor then starts afresh)."""
    task.add_done_callback(functools.partial(_stop_if_crashed, name, stop))


def _stop_if_crashed(name: str, stop: Callable[[], object], task: asyncio.Task[object]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("%s crashed; stopping what depends on it", name, exc_info=exc)
        stop()
