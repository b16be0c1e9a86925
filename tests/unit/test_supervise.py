"""The supervisor of long-lived tasks (worker.supervise): restart, backoff, logs, cancellation.

Time is injected (a recording sleep, a settable clock): nothing here waits for real.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import pytest

from worker.supervise import Restart, stop_on_crash, supervise


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Records every pause the supervisor asks for, without pausing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Highest(random.Random):
    """Always draws the top of the range, so a test sees the backoff ceiling itself."""

    def uniform(self, a: float, b: float) -> float:
        return max(a, b)


def crashing(
    times: int, runs: list[int], exc: Exception | None = None
) -> Callable[[], Awaitable[None]]:
    """A task body that raises on its first ``times`` runs, then returns."""

    async def run() -> None:
        runs.append(len(runs) + 1)
        if len(runs) <= times:
            raise exc if exc is not None else RuntimeError(f"boom {len(runs)}")

    return run


async def test_a_task_that_raises_is_run_again() -> None:
    runs: list[int] = []
    sleeps = Sleeps()
    await supervise("job", crashing(1, runs), Restart(low=0.5, high=4.0), sleep=sleeps)
    assert runs == [1, 2]
    assert len(sleeps.delays) == 1 and 0.5 <= sleeps.delays[0] <= 4.0


async def test_a_task_that_returns_is_not_restarted() -> None:
    runs: list[int] = []
    sleeps = Sleeps()
    await supervise("job", crashing(0, runs), sleep=sleeps)
    assert runs == [1] and sleeps.delays == []


async def test_restarts_back_off_exponentially_up_to_the_bound() -> None:
    sleeps = Sleeps()
    await supervise("job", crashing(6, []), Restart(low=0.1, high=1.0), sleep=sleeps,
                    rng=Highest())
    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


async def test_restart_delays_are_jittered_within_their_bounds() -> None:
    sleeps = Sleeps()
    await supervise("job", crashing(50, []), Restart(low=0.1, high=2.0), sleep=sleeps,
                    rng=random.Random(7))
    assert all(0.1 <= d <= 2.0 for d in sleeps.delays)
    assert len(set(sleeps.delays)) > 40  # drawn, not fixed: crashed processes spread out


async def test_a_run_that_lasted_resets_the_backoff() -> None:
    clock, sleeps = Clock(), Sleeps()
    runs: list[int] = []

    async def run() -> None:
        runs.append(1)
        if len(runs) == 3:
            clock.now += 60.0  # the third run was healthy for a minute before it crashed
        if len(runs) < 5:
            raise RuntimeError("boom")

    await supervise("job", run, Restart(low=0.1, high=10.0, healthy_seconds=60.0),
                    sleep=sleeps, clock=clock, rng=Highest())
    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.1, 0.2])


async def test_a_crash_is_logged_once_at_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="smsgw.supervise")
    await supervise("reaper", crashing(1, [], KeyError("snapshot")), sleep=Sleeps())
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("reaper crashed")
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)
    assert "KeyError: 'snapshot'" in caplog.text  # the traceback is in the line's text


async def test_cancelling_a_running_task_ends_the_supervisor() -> None:
    started, runs = asyncio.Event(), []

    async def run() -> None:
        runs.append(1)
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise("job", run, sleep=Sleeps()))
    async with asyncio.timeout(5):
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runs == [1]


async def test_cancelling_during_the_backoff_ends_the_supervisor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pausing = asyncio.Event()

    async def sleep(_: float) -> None:
        pausing.set()
        await asyncio.Event().wait()

    runs: list[int] = []
    task = asyncio.create_task(supervise("job", crashing(10, runs), sleep=sleep))
    async with asyncio.timeout(5):
        await pausing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runs == [1]
    assert len(caplog.records) == 1  # the crash; the cancellation is not an error


async def test_a_task_its_owner_needs_stops_the_owner_when_it_crashes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped = asyncio.Event()

    async def timer() -> None:
        raise RuntimeError("a bug in the timer")

    task = asyncio.create_task(timer())
    stop_on_crash(task, "session timer", stopped.set)
    async with asyncio.timeout(5):
        await stopped.wait()
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.getMessage().startswith("session timer")
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_a_needed_task_that_is_cancelled_or_returns_stops_nothing() -> None:
    stops: list[str] = []

    async def returns() -> None:
        pass

    done = asyncio.create_task(returns())
    cancelled = asyncio.create_task(asyncio.Event().wait())
    stop_on_crash(done, "done", lambda: stops.append("done"))
    stop_on_crash(cancelled, "cancelled", lambda: stops.append("cancelled"))
    cancelled.cancel()
    # Our callbacks were added first, so they have run once gather's has.
    await asyncio.gather(done, cancelled, return_exceptions=True)
    assert stops == []
