"""Stopping background tasks for sure, and cleaning up after being stopped (worker.cancel)."""

from __future__ import annotations

import asyncio

import pytest

from worker.cancel import accept_cancellation, cancel_and_wait


async def _swallows_one_cancellation(stopped: asyncio.Event) -> None:
    """A loop whose first cancellation is lost, as Python 3.11's wait_for can lose one."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass  # swallowed: the loop goes on
    try:
        await asyncio.Event().wait()
    finally:
        stopped.set()


async def test_a_task_that_swallowed_a_cancellation_is_cancelled_again() -> None:
    stopped = asyncio.Event()
    task = asyncio.create_task(_swallows_one_cancellation(stopped))
    await asyncio.sleep(0)  # one pass of the loop: the task starts waiting
    async with asyncio.timeout(5):
        await cancel_and_wait([task])
    assert task.cancelled() and stopped.is_set()


async def test_one_cancellation_alone_would_not_stop_it() -> None:
    # What cancel_and_wait guards against: cancel once and gather, and the wait never ends.
    task = asyncio.create_task(_swallows_one_cancellation(asyncio.Event()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await asyncio.gather(task, return_exceptions=True)
    await cancel_and_wait([task])


async def test_finished_and_failed_tasks_are_collected_without_error() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    done = asyncio.create_task(asyncio.sleep(0))
    failed = asyncio.create_task(fails())
    await asyncio.wait([done, failed])
    async with asyncio.timeout(5):
        await cancel_and_wait([done, failed])
    assert done.done() and failed.done()


async def _cleanup_after_cancel() -> str:
    """Catch our own cancellation, then clean up under a timeout that expires (as redis-py's
    zero-timeout check of a pooled connection does)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        accept_cancellation()
    try:
        async with asyncio.timeout(0):
            await asyncio.Event().wait()
    except TimeoutError:
        return "timed out"
    return "unreachable"


async def test_a_timeout_in_cleanup_after_an_accepted_cancellation_is_a_timeout() -> None:
    # Without accept_cancellation, Python 3.11.2 raises CancelledError out of the timeout.
    task = asyncio.create_task(_cleanup_after_cancel())
    await asyncio.sleep(0)
    task.cancel()
    async with asyncio.timeout(5):
        assert await task == "timed out"
    assert task.cancelling() == 0
