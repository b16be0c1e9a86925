"""Answering an SMSC only once its write is recorded (worker.patience.PatientAnswers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis.exceptions

from worker.patience import PatientAnswers
from worker.smpp import pdu

WAIT = 5.0  # bound on every wait of these tests


def _future(result: str | None = None, error: Exception | None = None) -> asyncio.Future[str]:
    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    if error is not None:
        fut.set_exception(error)
    elif result is not None:
        fut.set_result(result)
    return fut


def _tries(*outcomes: str | Exception) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """``again()`` answering ``outcomes`` in turn (the last one for ever), and a call count."""
    calls = [0]

    async def again() -> str:
        outcome = outcomes[min(calls[0], len(outcomes) - 1)]
        calls[0] += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return again, calls


async def test_a_write_recorded_at_its_first_try_is_answered_ok_and_counted() -> None:
    answers, recorded = PatientAnswers(patience=8.0), []
    again, calls = _tries("unused")
    async with asyncio.timeout(WAIT):
        status = await answers.answer(_future("01ID"), again, recorded.append, "receipt")
    assert (status, recorded, calls[0]) == (pdu.ESME_ROK, ["01ID"], 0)


async def test_a_redis_outage_at_the_first_try_is_ridden_out_by_retries() -> None:
    answers, recorded = PatientAnswers(patience=8.0), []
    down = redis.exceptions.ConnectionError("down")
    again, calls = _tries(down, down, "01ID")
    first = _future(error=redis.exceptions.TimeoutError("slow"))
    async with asyncio.timeout(WAIT):
        status = await answers.answer(first, again, recorded.append, "receipt")
    assert (status, recorded, calls[0]) == (pdu.ESME_ROK, ["01ID"], 3)


async def test_redis_down_for_the_whole_patience_is_answered_with_an_error() -> None:
    answers, recorded = PatientAnswers(patience=0.2), []
    again, calls = _tries(redis.exceptions.ConnectionError("down"))
    first = _future(error=redis.exceptions.ConnectionError("down"))
    async with asyncio.timeout(WAIT):
        status = await answers.answer(first, again, recorded.append, "receipt")
    assert (status, recorded) == (pdu.ESME_RSYSERR, [])
    assert calls[0] >= 1


async def test_a_first_try_that_hangs_is_answered_with_an_error_by_the_sweep() -> None:
    answers, recorded = PatientAnswers(patience=8.0), []
    again, _ = _tries("unused")
    first = _future()  # never answered in time
    answer = answers.answer(first, again, recorded.append, "receipt")
    loop = asyncio.get_running_loop()
    answers.sweep(loop.time() + 7.0)
    assert not answer.done()
    answers.sweep(loop.time() + 8.5)
    assert answer.result() == pdu.ESME_RSYSERR
    first.set_result("01ID")  # recorded after all, too late for this answer: not counted
    await asyncio.sleep(0)  # one pass of the loop runs the done callback (it must change nothing)
    assert (answer.result(), recorded) == (pdu.ESME_RSYSERR, [])


async def test_the_sweep_leaves_answered_writes_and_stops_at_the_first_in_time() -> None:
    answers = PatientAnswers(patience=8.0)
    again, _ = _tries("unused")
    done, hanging = _future("01A"), _future()
    first = answers.answer(done, again, list[str]().append, "a")
    second = answers.answer(hanging, again, list[str]().append, "b")
    await asyncio.sleep(0)  # one pass of the loop runs the first answer's callback
    answers.sweep(asyncio.get_running_loop().time() + 1.0)
    assert first.result() == pdu.ESME_ROK and not second.done()
    hanging.set_result("01B")
    async with asyncio.timeout(WAIT):
        assert await second == pdu.ESME_ROK


async def test_any_other_error_of_the_write_is_the_answers_error() -> None:
    answers = PatientAnswers(patience=8.0)
    again, calls = _tries("unused")
    answer = answers.answer(_future(error=ValueError("bug")), again, list[str]().append, "x")
    async with asyncio.timeout(WAIT):
        with pytest.raises(ValueError, match="bug"):
            await answer
    assert calls[0] == 0


async def test_close_stops_the_retries_still_running() -> None:
    answers = PatientAnswers(patience=60.0)
    again, _ = _tries(redis.exceptions.ConnectionError("down"))
    answer = answers.answer(_future(error=redis.exceptions.ConnectionError("down")), again,
                            list[str]().append, "receipt")
    await asyncio.sleep(0)  # one pass of the loop: the first try's callback starts a retry
    async with asyncio.timeout(WAIT):
        await answers.close()
    assert not answer.done()  # no answer: the SMSC delivers it again
