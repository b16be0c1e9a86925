"""Our SMPP session (worker.smpp.session) against the simulator over real TCP.

Each test guards one measured defect of aiosmpplib 0.7.4 (issue 5, section 8): in-flight submits
that hear nothing after a drop (14), no window (4), quadratic correlation with false timeouts
(3, 7), vendor statuses and generic_nack that crash or reset the session (10, 6), and a failing
deliver handler that ends the session (2).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
import redis.exceptions

from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.smpp import pdu
from worker.smpp.pdu import ShortMessage
from worker.smpp.session import (
    DeliverHandler,
    Session,
    SessionClosed,
    SessionParams,
    SubmitResult,
)

pytestmark = pytest.mark.integration

ACCOUNT = {"smsgw": "secret"}
WAIT = 10.0  # bound on any single test's waiting
# Far beyond every test's bound: a submit that fails did not fail by timing out.
NO_TIMEOUT = 600.0


async def _ok(_: ShortMessage) -> int:
    return pdu.ESME_ROK


SimFactory = Callable[..., Awaitable[Simulator]]
SessionFactory = Callable[..., Awaitable[Session]]


@pytest.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    """Start simulators with the given config fields; all stopped afterwards."""
    started: list[Simulator] = []

    async def factory(**config: object) -> Simulator:
        sim = Simulator(SimulatorConfig(accounts=ACCOUNT, **config))  # type: ignore[arg-type]
        await sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.fixture
async def open_session() -> AsyncIterator[SessionFactory]:
    """Bind sessions to a simulator; all aborted afterwards."""
    opened: list[Session] = []

    async def factory(
        sim: Simulator, window: int = 10,
        on_deliver: Callable[[ShortMessage], Awaitable[int]] = _ok,
        response_timeout: float = NO_TIMEOUT,
    ) -> Session:
        params = SessionParams(
            host="127.0.0.1", port=sim.port, system_id="smsgw", password="secret",
            system_type="", bind_command=pdu.BIND_TRANSCEIVER, window=window,
            enquire_link_seconds=NO_TIMEOUT, response_timeout_seconds=response_timeout,
        )
        session = await Session.open(params, on_deliver, "test")
        opened.append(session)
        return session

    yield factory
    for session in opened:
        session.abort()


def _sm(n: int, receipt: bool = False) -> ShortMessage:
    return ShortMessage(source_addr="smsgw", destination_addr=f"2782{n:07d}",
                        registered_delivery=int(receipt), short_message=b"hello")


# --- defect 14: a dropped connection answers every in-flight submit at once -------------------


async def test_in_flight_submits_raise_session_closed_as_soon_as_the_connection_drops(
    make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    # The simulator would answer only after a minute, and our response timeout is longer still:
    # nothing but the drop itself can end these submits.
    window, count = 4, 10
    sim = await make_sim(ack_delay=60.0, drop_after=1 + window)  # bind, then `window` submits
    session = await open_session(sim, window=window)
    async with asyncio.timeout(WAIT):
        submits = [asyncio.create_task(session.submit(_sm(n))) for n in range(count)]
        await session.wait_closed()
        # connection_lost settles every pending request synchronously.
        assert session.in_flight == 0 and not session.bound
        results = await asyncio.gather(*submits, return_exceptions=True)
    assert all(isinstance(r, SessionClosed) for r in results), results
    assert sim.stats()["drops"] == 1
    assert len(sim.submits) == window - 1  # on the wire, unanswered, when the SMSC hung up


async def test_a_submit_after_the_drop_raises_session_closed_without_waiting(
    make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    sim = await make_sim(drop_after=2)  # the first submit_sm ends the connection
    session = await open_session(sim)
    async with asyncio.timeout(WAIT):
        with pytest.raises(SessionClosed):
            await session.submit(_sm(1))
        await session.wait_closed()
        with pytest.raises(SessionClosed):
            await session.submit(_sm(2))


async def test_unanswered_submits_keep_their_window_until_the_response_timeout_resets_the_bind(
    make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    # The simulator answers only after a minute; our response timeout is a fraction of a second.
    sim = await make_sim(ack_delay=60.0)
    session = await open_session(sim, window=2, response_timeout=0.3)
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(*(session.submit(_sm(n)) for n in range(5)),
                                       return_exceptions=True)
        await session.wait_closed()
    assert all(isinstance(r, SessionClosed) for r in results), results
    # A timeout is a fault of the bind, not of the request: the two on the wire kept their
    # window slots until the bind was reset (unbind, close), so the other three never left.
    assert sorted(r.written for r in results if isinstance(r, SessionClosed)) == [
        False, False, False, True, True]
    assert all("bind reset (no response in time" in str(r) for r in results
               if isinstance(r, SessionClosed) and r.written)
    assert len(sim.submits) == 2
    assert session.in_flight == 0 and not session.bound


async def test_answered_submits_are_not_expired_by_the_response_timeout(
    make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    # ~1 s of submits answered well in time, while deadlines are swept every 0.2 s.
    sim = await make_sim(ack_delay=0.05)
    session = await open_session(sim, window=3, response_timeout=2.0)
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(*(session.submit(_sm(n)) for n in range(60)))
    assert [r.status for r in results] == [pdu.ESME_ROK] * 60
    assert session.in_flight == 0


# --- defect 4: a window per bind -----------------------------------------------------------


@pytest.mark.parametrize("window", [1, 5])
async def test_never_more_than_window_submits_are_outstanding(
    window: int, make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    # The simulator answers ESME_RMSGQFUL to a submit_sm beyond `window` unanswered ones, and
    # holds each answer back a little so that the window is really filled.
    sim = await make_sim(window=window, ack_delay=0.01)
    session = await open_session(sim, window=window)
    count = 12 * window
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(*(session.submit(_sm(n)) for n in range(count)))
    assert [r.status for r in results] == [pdu.ESME_ROK] * count
    assert [s for s in sim.submits if s.status == pdu.ESME_RMSGQFUL] == []
    assert len(sim.submits) == count


# --- defects 3 and 7: correlation at scale ----------------------------------------------------


async def test_20000_submits_over_one_session_correlate_without_false_timeouts(
    make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    count = 20_000
    sim = await make_sim(max_records=count)
    session = await open_session(sim, window=200)
    async with asyncio.timeout(60):
        results = await asyncio.gather(*(session.submit(_sm(n)) for n in range(count)))
    assert all(r.status == pdu.ESME_ROK and r.message_id for r in results)
    # Each answer reached the submit it belongs to: the simulator gave that message id to the
    # submit_sm with this very destination.
    destination_of = {s.message_id: s.destination for s in sim.submits}
    assert len(destination_of) == count
    assert [destination_of[r.message_id] for r in results] == [
        _sm(n).destination_addr for n in range(count)]
    assert session.in_flight == 0 and session.bound


# --- defects 10 and 6: vendor statuses and generic_nack are data ------------------------------


async def test_a_vendor_specific_status_is_returned_and_the_session_stays_bound(
    make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    sim = await make_sim(error_prefixes={"2799": 0x400})
    session = await open_session(sim)
    async with asyncio.timeout(WAIT):
        vendor = await session.submit(replace(_sm(0), destination_addr="27990000001"))
        after = await session.submit(_sm(1))
    assert vendor == SubmitResult(status=0x400)
    assert after.status == pdu.ESME_ROK and after.message_id
    assert session.bound and sim.stats()["connections"] == 1


@pytest.mark.parametrize("nack_status", [pdu.ESME_RSYSERR, pdu.ESME_RINVCMDID, 0x4F0])
async def test_a_generic_nack_answers_its_own_submit_as_data(
    nack_status: int, make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    sim = await make_sim(nack_rate=1.0, nack_status=nack_status)
    session = await open_session(sim)
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(*(session.submit(_sm(n)) for n in range(5)))
    assert results == [SubmitResult(status=nack_status, nack=True)] * 5
    assert session.bound and session.in_flight == 0 and sim.stats()["connections"] == 1


# --- defect 2: a failing deliver handler does not end the session -----------------------------


def _failing_once(error: Exception, handled: list[ShortMessage], kind: str) -> DeliverHandler:
    """A handler that fails its first deliver_sm: a coroutine function, a function that raises
    instead of returning an awaitable, or one that returns futures (the dispatcher's kind)."""

    def fails(sm: ShortMessage) -> bool:
        handled.append(sm)
        return len(handled) == 1

    async def ok() -> int:
        return pdu.ESME_ROK

    async def coroutine(sm: ShortMessage) -> int:
        if fails(sm):
            raise error
        return pdu.ESME_ROK

    def raising(sm: ShortMessage) -> Awaitable[int]:
        if fails(sm):
            raise error
        return ok()

    def future(sm: ShortMessage) -> Awaitable[int]:
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if fails(sm):
            answer.set_exception(error)
        else:
            answer.set_result(pdu.ESME_ROK)
        return answer

    handlers: dict[str, DeliverHandler] = {"coroutine": coroutine, "raising": raising,
                                           "future": future}
    return handlers[kind]


@pytest.mark.parametrize("kind", ["coroutine", "raising", "future"])
@pytest.mark.parametrize("error", [RuntimeError("hook bug"),
                                   redis.exceptions.ConnectionError("redis is down")])
async def test_a_deliver_handler_that_raises_does_not_end_the_session(
    error: Exception, kind: str, make_sim: SimFactory, open_session: SessionFactory,
) -> None:
    handled: list[ShortMessage] = []
    failing_once = _failing_once(error, handled, kind)
    sim = await make_sim()
    session = await open_session(sim, on_deliver=failing_once)
    async with asyncio.timeout(WAIT):
        first = await session.submit(_sm(1, receipt=True))
        # answered with an error status (not left hanging), so the SMSC redelivers it
        await sim.wait_for_receipts_acked(1)
        second = await session.submit(_sm(2, receipt=True))
        await sim.wait_for_receipts_acked(2)
    assert first.status == second.status == pdu.ESME_ROK
    assert [sm.source_addr for sm in handled] == ["27820000001", "27820000001", "27820000002"]
    assert sim.stats()["receipts_resent"] == 1
    assert session.bound and sim.stats()["connections"] == 1
