"""The worker's dispatcher, with a real redis-server, against an SMSC that misbehaves on the link
(issue 11): what each message ends as, and how often it went on the wire (the scripted double's
record of every submit_sm is the judge)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.test_worker_behaviour import accept, worker
from tests.smsc_double import Conn, Script, ScriptedSmsc, submit_resp_body
from worker.smpp import pdu
from worker.smpp.pdu import Pdu
from worker.store import EVENTS, Record, Store, parse_events

pytestmark = pytest.mark.integration

WAIT = 30.0


@asynccontextmanager
async def statuses(redis_url: str) -> AsyncIterator[Callable[[Collection[str], str], Any]]:
    """Subscribe to transition events and yield ``until(ids, status)``."""
    client = Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(EVENTS)
    while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
        pass

    async def until(ids: Collection[str], status: str) -> None:
        waiting = set(ids)
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                waiting -= {i for i, s in parse_events(msg["data"]) if s == status}
            if not waiting:
                return

    try:
        yield until
    finally:
        await pubsub.aclose()
        await client.aclose()


async def send(redis_url: str, store: Store, smsc: ScriptedSmsc, count: int,
               **channel: Any) -> list[Record]:
    """``count`` messages through a dispatcher bound to the double, until all are submitted;
    then one more pass of the reaper, which must find nothing left to send."""
    async with worker(store, smsc.port, **channel) as dispatcher, \
            statuses(redis_url) as until, asyncio.timeout(WAIT):
        ids = await accept(store, [(f"2782{n:07d}", "hello") for n in range(count)])
        sending = asyncio.create_task(dispatcher.send(ids))
        await until(ids, "submitted")
        await sending
        assert await dispatcher.drain_due() == 0
    records = await store.get(ids)
    return [r for r in records if r is not None]


def smsc_ids(records: Sequence[Record]) -> list[str]:
    return sorted(r.fields.get("smsc_ids", "") for r in records)


class UnterminatedMessageId(Script):
    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        conn.respond(p, body=b"12345")  # ESME_ROK, the message_id's NUL missing


class AnswersInOrderWhenUnbound(Script):
    """A slow SMSC that answers in order: a connection's submits are answered only when the
    unbind comes, just before the unbind_resp."""

    def __init__(self) -> None:
        self.held: list[Pdu] = []
        self.most_held = 0

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        self.held.append(p)
        self.most_held = max(self.most_held, len(self.held))

    async def on_unbind(self, conn: Conn, p: Pdu) -> None:
        for held in self.held:
            conn.respond(held, body=submit_resp_body(conn.next_id()))
        self.held.clear()
        await super().on_unbind(conn, p)


class FirstBindFaulty(Script):
    """The first connection answers every submit_sm with ``answer``; later ones are healthy."""

    def __init__(self, answer: Callable[[Conn, Pdu], None]) -> None:
        self.answer = answer

    async def on_submit(self, conn: Conn, p: Pdu) -> None:
        if conn.index == 0:
            self.answer(conn, p)
        else:
            await super().on_submit(conn, p)


async def test_an_accepted_submit_with_an_undecodable_message_id_is_submitted_once_without_id(
    redis_url: str, redis: Redis,
) -> None:
    store = Store(redis, 3600)
    async with ScriptedSmsc(UnterminatedMessageId()) as smsc:
        [record] = await send(redis_url, store, smsc, 1)
    assert len(smsc.submits) == 1
    assert record.status == "submitted"
    assert record.fields.get("smsc_ids") == ""
    assert record.fields.get("err_code") == "NoSmscId"


async def test_late_answers_reset_the_bind_within_the_window_and_each_message_is_sent_once(
    redis_url: str, redis: Redis,
) -> None:
    # Answers come only when the bind is reset after the response timeout: every message is
    # answered late, yet accepted once, and no bind ever had more than its window outstanding.
    store = Store(redis, 3600)
    script = AnswersInOrderWhenUnbound()
    async with ScriptedSmsc(script) as smsc:
        records = await send(redis_url, store, smsc, 6, window=3,
                             response_timeout_seconds=0.3)
    assert [r.status for r in records] == ["submitted"] * 6
    assert len(smsc.submits) == 6
    assert script.most_held <= 3
    assert smsc.binds >= 2 and len(smsc.of(pdu.UNBIND)) >= 2


@pytest.mark.parametrize("status", [pdu.ESME_RINVBNDSTS, pdu.ESME_RBINDFAIL])
async def test_a_bind_state_error_resends_the_message_on_a_fresh_bind(
    status: int, redis_url: str, redis: Redis,
) -> None:
    store = Store(redis, 3600)
    script = FirstBindFaulty(lambda conn, p: conn.respond(p, status=status))
    async with ScriptedSmsc(script) as smsc:
        [record] = await send(redis_url, store, smsc, 1)
    assert record.status == "submitted" and record.fields.get("smsc_ids") == "1"
    assert [c.index for c, p in smsc.received if p.command_id == pdu.SUBMIT_SM] == [0, 1]
    assert len(smsc.of(pdu.UNBIND)) >= 1
    # The refused submit was not taken: only the one that was costs an attempt.
    assert record.fields.get("attempts") == "1"


async def test_a_response_to_another_command_is_no_answer_and_the_message_goes_again(
    redis_url: str, redis: Redis,
) -> None:
    store = Store(redis, 3600)
    script = FirstBindFaulty(lambda conn, p: conn.respond(p, command_id=pdu.ENQUIRE_LINK_RESP))
    async with ScriptedSmsc(script) as smsc:
        [record] = await send(redis_url, store, smsc, 1)
    # Its receipt can match now: it has the id of the submit_sm_resp that really answered it.
    assert record.status == "submitted" and record.fields.get("smsc_ids") == "1"
    assert [c.index for c, p in smsc.received if p.command_id == pdu.SUBMIT_SM] == [0, 1]
