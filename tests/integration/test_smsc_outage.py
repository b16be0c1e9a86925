"""An SMSC outage must not fail messages that were never sent (issue 11, item 4): a worker
claims only for channels where it has a bind up, and only a submit that reached the SMSC
spends an attempt. The scripted double plays the SMSC over TCP; Redis is real."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.support import accept_messages, numbers, running_dispatcher, wait_final
from tests.smsc_double import Conn, Script, ScriptedSmsc, submit_resp_body
from worker.config import settings_from_dict
from worker.dispatch import Dispatcher, DispatchSettings
from worker.ids import new_id
from worker.smpp import pdu
from worker.smpp.pdu import Pdu
from worker.store import Store, now_ms

pytestmark = pytest.mark.integration

WAIT = 20.0  # bound on any test's waiting


@asynccontextmanager
async def dispatcher(store: Store, port: int, *, reaper: bool = True,
                     **channel: Any) -> AsyncIterator[Dispatcher]:
    """A dispatcher wired as the arq worker wires it, with short backoffs; it does not wait
    for a bind before it yields (the SMSC may be down)."""
    settings = settings_from_dict(
        {"channels": {"sim": {"port": port, "system_id": "smsgw", "password": "secret",
                              "binds": 1, "window": 10, "registered_delivery": 0,
                              "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2,
                              **channel}}},
        {}, source="test")
    # Faster than the config allows an operator (a refused bind is retried after 1 s at the
    # soonest), so that the test sees many refusals in little time.
    fast = replace(settings.channels["sim"], bind_refused_retry_seconds=0.05,
                   response_timeout_seconds=0.5)
    async with running_dispatcher(
            store, {"sim": fast},
            DispatchSettings(wait_bind_seconds=0.05, reap_interval_seconds=0.05),
            reaper=reaper) as d:
        yield d


class _LogCount(logging.Handler):
    """Counts log lines containing ``text``; :meth:`reached` waits for a count."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.count = text, 0
        self._change = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.count += 1
            self._change.set()

    async def reached(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.count < count:
                self._change.clear()
                await self._change.wait()


@contextmanager
def counting(text: str) -> Iterator[_LogCount]:
    handler = _LogCount(text)
    logger = logging.getLogger("smsgw.smpp")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def states(store: Store, ids: Sequence[str]) -> list[tuple[str, int]]:
    """(status, attempts spent) of each message."""
    got = [r for r in await store.get(ids) if r is not None]
    assert len(got) == len(ids)
    return [(r.status, int(r.fields.get("attempts") or 0)) for r in got]


class NeverAnswersBind(Script):
    async def on_bind(self, conn: Conn, p: Pdu) -> None:
        pass  # the ESME gives up after its response timeout


class FailsBind(Script):
    async def on_bind(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, status=pdu.ESME_RBINDFAIL)


@pytest.mark.parametrize("script", [NeverAnswersBind, FailsBind], ids=["unanswered", "bindfail"])
async def test_a_worker_holding_a_bind_slot_without_a_bind_up_claims_nothing(
    redis: Redis, script: type[Script]
) -> None:
    store = Store(redis, 3600)
    async with ScriptedSmsc(script()) as smsc, \
            dispatcher(store, smsc.port, reaper=False, max_attempts=1) as d:
        await smsc.wait_for(lambda: smsc.binds >= 2, WAIT)  # a bind failed, the next is tried
        assert d.pools["sim"].serving  # the slot lease is taken before binding
        ids = await accept_messages(store, [(to, "hello") for to in numbers(3)])
        assert await d.send(ids) == 0  # the wake-up job's call
    assert await states(store, ids) == [("queued", 0)] * 3


async def test_messages_wait_out_an_smsc_outage_and_all_go_out_after_it(redis: Redis) -> None:
    # One attempt allowed: a claim that spent it while no bind was up would fail its message.
    store = Store(redis, 3600)
    smsc = ScriptedSmsc()
    await smsc.start()
    await smsc.stop()  # its port now refuses connections, until start() again
    try:
        with counting("connect failed") as refused:
            async with dispatcher(store, smsc.port, max_attempts=1) as d:
                ids = await accept_messages(store, [(to, "hello") for to in numbers(10)])
                assert await d.send(ids) == 0  # the wake-up job's call: no bind up, no claim
                await refused.reached(5)  # the outage outlasts several backoffs and reapings
                assert await states(store, ids) == [("queued", 0)] * 10
                await smsc.start()
                await smsc.wait_for(lambda: len(smsc.submits) >= 10, WAIT)
            # (leaving drained the dispatcher: every answer is read and recorded)
    finally:
        await smsc.stop()
    assert await states(store, ids) == [("submitted", 1)] * 10
    assert sorted(s.destination_addr for s in smsc.submits) == numbers(10)


class AcceptsOnePartThenUnbinds(Script):
    """Accepts the first submit_sm and unbinds in the same write, so the next part finds no
    bind up and never leaves the ESME; refuses the next ``refusals`` binds, then behaves."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.answered = 0

    async def on_bind(self, conn: Conn, p: Pdu) -> None:
        if conn.index > 0 and self.refusals:
            self.refusals -= 1
            conn.respond(p, status=pdu.ESME_RBINDFAIL)
            return
        await super().on_bind(conn, p)

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        self.answered += 1
        if self.answered > 1:
            await super().on_submit(conn, p)
            return
        resp = pdu.encode_pdu(pdu.SUBMIT_SM_RESP, pdu.ESME_ROK, p.seq,
                              submit_resp_body(conn.next_id()))
        conn.transport.write(resp + pdu.encode_pdu(pdu.UNBIND, 0, 1))


async def test_a_later_part_that_finds_no_bind_waits_for_one_without_spending_attempts(
    redis: Redis,
) -> None:
    # One attempt allowed: a later part that spent it on finding no bind would fail the message.
    store = Store(redis, 3600)
    async with ScriptedSmsc(AcceptsOnePartThenUnbinds(refusals=3)) as smsc:
        async with dispatcher(store, smsc.port, reaper=False, max_attempts=1) as d:
            assert await d.pools["sim"].wait_ready(WAIT)
            ids = await accept_messages(store, [("27820000001", "two parts " * 20)])
            assert await d.send(ids) == 1
    assert await states(store, ids) == [("submitted", 1)]
    assert len(smsc.submits) == 2 and smsc.binds == 5  # bound, 3 refused, bound again


# --- an outage that never ends: queued messages fail at the channel's max age ---------------

MAX_AGE = 60  # seconds; messages are made older by their accepted time, never by waiting


def _channel(port: int) -> dict[str, Any]:
    return {"port": port, "system_id": "smsgw", "password": "secret", "binds": 1,
            "registered_delivery": 0, "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.2, "response_timeout_seconds": 1,
            "max_age_seconds": MAX_AGE}


async def test_messages_queued_through_an_outage_that_never_ends_fail_at_max_age(
    redis: Redis, redis_url: str,
) -> None:
    store = Store(redis, 3600)
    smsc = ScriptedSmsc()
    await smsc.start()
    await smsc.stop()  # down for the whole test
    async with dispatcher(store, smsc.port, max_age_seconds=MAX_AGE) as d:
        # The young one is indexed first, so every pass that sees the old ones sees it too.
        young = await accept_messages(store, [("27830000001", "hello")],
                                      accepted_at=now_ms() - MAX_AGE * 1000 // 2)
        old = await accept_messages(store, [(to, "hello") for to in numbers(3)],
                                    accepted_at=now_ms() - 2 * MAX_AGE * 1000)
        # wait_final waits on the status events: the reaper's sweep published them
        async with asyncio.timeout(WAIT):
            assert await wait_final(redis_url, old) == dict.fromkeys(old, "failed")
        assert d.served() == []
    recs = await store.get([*old, *young])
    assert [r.status if r else None for r in recs] == ["failed"] * 3 + ["queued"]
    for rec in recs[:3]:
        assert rec is not None
        assert rec.fields["err_code"] == "Expired"
        assert rec.fields["err_text"] == "max age reached while channel sim had no bind up"
    seen = await store.overview(["sim"], minutes=2, failures=10)
    assert sum(row.get("sim|failed", 0) for _, row in seen.minutes) == 3
    assert sorted(f[0] for f in seen.failures) == sorted(old)


async def test_the_expiry_sweep_leaves_the_messages_of_a_served_channel_alone(
    redis: Redis,
) -> None:
    store = Store(redis, 3600)
    down = ScriptedSmsc()
    await down.start()
    await down.stop()
    async with ScriptedSmsc() as up:
        settings = settings_from_dict(
            {"channels": {"up": _channel(up.port), "down": _channel(down.port)}}, {},
            source="test")
        d = Dispatcher(store, settings.channels, f"test-{new_id()}", DispatchSettings())
        d.start()  # no reaper: nothing claims, the sweep is called as the reaper calls it
        try:
            assert await d.pools["up"].wait_ready(WAIT)
            old_at = now_ms() - 2 * MAX_AGE * 1000
            kept = await accept_messages(store, [("27820000001", "hi")], channel="up",
                                         accepted_at=old_at)
            failed = await accept_messages(store, [("27820000002", "hi")], channel="down",
                                           accepted_at=old_at)
            assert d.served() == ["up"]
            assert await d.expire_unserved() == 1
        finally:
            await d.drain(2.0)
    assert await states(store, [*kept, *failed]) == [("queued", 0), ("failed", 0)]

