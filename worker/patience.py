"""Answers to an SMSC that waits on a store write (a receipt, an MO message).

The SMSC is answered ESME_ROK only once the write is recorded; if it is not recorded within the
patience (a Redis outage), the answer is ESME_RSYSERR and the SMSC delivers it again. A write
that succeeds at its first try, the hot path, costs a future and a callback: no task, no timer.
A failed first try is retried by a task with a timer of its own; a first try that hangs is
answered by one periodic sweep of deadlines (like a session's response timeouts).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from worker.smpp import pdu
from worker.store import REDIS_ERRORS
from worker.supervise import backoff

log = logging.getLogger("smsgw.worker")

R = TypeVar("R")


class PatientAnswers:
    """``answer(first, again, recorded, what)``: the deliver_sm_resp status of one write."""

    def __init__(self, patience: float, sweep_seconds: float = 0.25) -> None:
        self.patience = patience
        self._sweep_seconds = sweep_seconds
        # (deadline, answer, what) in arrival order: every write has the same patience, so
        # this is deadline order too and a sweep stops at the first one still in time.
        self._waiting: deque[tuple[float, asyncio.Future[int], str]] = deque()
        self._retries: set[asyncio.Task[None]] = set()
        self._rng = random.Random()
        # The first answer's loop, asked once: in Python 3.11 every get_running_loop() call is a
        # getpid() system call, and answer() runs per receipt.
        self._loop: asyncio.AbstractEventLoop | None = None

    def answer(
        self, first: asyncio.Future[R], again: Callable[[], Awaitable[R]],
        recorded: Callable[[R], object], what: str,
    ) -> asyncio.Future[int]:
        """The status to answer with once ``first`` (the write's first try) is done: ESME_ROK
        when it, or a retry by ``again()``, succeeds (``recorded`` is told the result first);
        ESME_RSYSERR when Redis stays unavailable for the patience. Any other error of the
        write is the answer's exception."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        deadline = loop.time() + self.patience
        self._waiting.append((deadline, answer, what))
        first.add_done_callback(functools.partial(
            self._first_done, answer, again, recorded, what, deadline))
        return answer

    def _first_done(
        self, answer: asyncio.Future[int], again: Callable[[], Awaitable[Any]],
        recorded: Callable[[Any], object], what: str, deadline: float,
        first: asyncio.Future[Any],
    ) -> None:
        if first.cancelled():
            answer.cancel()
            return
        exc = first.exception()  # retrieved even when unused: asyncio logs those it never saw
        if answer.done():  # given up on by the sweep
            return
        if exc is None:
            recorded(first.result())
            answer.set_result(pdu.ESME_ROK)
        elif isinstance(exc, REDIS_ERRORS):
            log.warning("%s not recorded yet (%s)", what, exc)
            task = asyncio.get_running_loop().create_task(
                self._retry(answer, again, recorded, what, deadline))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        else:
            answer.set_exception(exc)

    async def _retry(
        self, answer: asyncio.Future[int], again: Callable[[], Awaitable[Any]],
        recorded: Callable[[Any], object], what: str, deadline: float,
    ) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                attempt = 1
                while True:
                    await asyncio.sleep(backoff(attempt, 0.05, 1.0, self._rng))
                    try:
                        result = await again()
                    except REDIS_ERRORS as exc:
                        attempt += 1
                        log.warning("%s not recorded yet (%s)", what, exc)
                        continue
                    break
        except TimeoutError:
            _give_up(answer, what)
            return
        if not answer.done():
            recorded(result)
            answer.set_result(pdu.ESME_ROK)

    def sweep(self, now: float) -> None:
        """Answer ESME_RSYSERR to every write still unrecorded at its deadline."""
        waiting = self._waiting
        while waiting:
            deadline, answer, what = waiting[0]
            if not answer.done() and deadline > now:
                break
            waiting.popleft()
            _give_up(answer, what)

    async def sweep_forever(self) -> None:
        """Run :meth:`sweep` a few times a second until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._sweep_seconds)
            self.sweep(loop.time())

    async def close(self) -> None:
        """Stop the retries still running (their SMSC gets no answer and delivers again)."""
        for task in self._retries:
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)


def _give_up(answer: asyncio.Future[int], what: str) -> None:
    if not answer.done():  # the sweep and a retry's own timer may both see the deadline pass
        log.warning("%s not recorded; answered with an error so the SMSC redelivers", what)
        answer.set_result(pdu.ESME_RSYSERR)
