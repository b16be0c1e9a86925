"""The worker's dispatcher against the simulator over TCP, with a real redis-server.

Each test names a behaviour of issue 5 and guards a measured defect of aiosmpplib 0.7.4 that our
worker must not inherit: drops (14), throttling (5), receipt forms (9), vendor statuses (10),
generic_nack (6), splitting (1, 11, 12), early receipts, the window (4) and failures while
recording (2). The simulator's record of every submit_sm is the judge of what went on the wire.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
import redis.exceptions
from aiosmpplib.codec import GSM7BitCodec
from redis.asyncio import Redis

from tests.integration.support import running_dispatcher
from worker.config import settings_from_dict
from worker.dispatch import Dispatcher, DispatchSettings
from worker.encoding import analyse
from worker.ids import new_id
from worker.jobs import job_payload
from worker.simulator.config import SimulatorConfig
from worker.simulator.records import Concat, SubmitRecord
from worker.simulator.server import Simulator
from worker.smpp import pdu
from worker.store import (
    EVENTS,
    NewMessage,
    Outcome,
    ReceiptEvent,
    Record,
    Store,
    now_ms,
    parse_events,
)

pytestmark = pytest.mark.integration

ACCOUNT = {"smsgw": "secret"}
WAIT = 30.0  # bound on any test's waiting; every run here takes a few seconds
FINAL = frozenset({"delivered", "undelivered", "expired", "rejected", "failed"})
CHANNEL = "sim"


# --- harness -------------------------------------------------------------------------------


@asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[Simulator]:
    """A simulator with the given config fields, stopped on exit."""
    sim = Simulator(SimulatorConfig(accounts=ACCOUNT, **config))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@asynccontextmanager
async def worker(store: Store, port: int, reap_interval: float = 0.1, first_beat: bool = True,
                 **channel: Any) -> AsyncIterator[Dispatcher]:
    """A dispatcher wired as the arq worker wires it, bound to the channel before it yields;
    with ``first_beat``, its heartbeat is written once before (else the task's first beat)."""
    settings = settings_from_dict(
        {"channels": {CHANNEL: {"port": port, "system_id": "smsgw", "password": "secret",
                                "binds": 1, "window": 20, "enquire_link_seconds": 5,
                                "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2}}},
        {}, source="test")
    # Set after the config's checks: a test may want timeouts shorter than an operator may.
    channels = {CHANNEL: replace(settings.channels[CHANNEL], **channel)}
    async with running_dispatcher(store, channels,
                                  DispatchSettings(reap_interval_seconds=reap_interval),
                                  first_beat=first_beat, bound_within=WAIT) as dispatcher:
        yield dispatcher


async def accept(store: Store, messages: Sequence[tuple[str, str]]) -> list[str]:
    """Store (to, text) messages as the gateway does; returns their apiMessageIds."""
    new = [NewMessage(api_id=new_id(), account="acme", channel=CHANNEL, to=to, content=text,
                      encoding=analyse(text).encoding, segments=analyse(text).segments)
           for to, text in messages]
    ids = [m.api_id for m in new]
    await store.accept(new, window_seconds=60, job_id=new_id(),
                       job_payload=job_payload(ids, now_ms()), job_expiry_seconds=60)
    return ids


@asynccontextmanager
async def transitions(redis_url: str) -> AsyncIterator[Callable[[Collection[str]], Any]]:
    """Subscribe to transition events (confirmed) and yield ``until_final(ids)``."""
    client = Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(EVENTS)
    while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
        pass

    async def until_final(ids: Collection[str]) -> dict[str, str]:
        waiting, finals = set(ids), {}
        async for msg in pubsub.listen():
            if msg["type"] != "message":
                continue
            for api_id, status in parse_events(msg["data"]):
                if status in FINAL and api_id in waiting:
                    finals[api_id] = status
                    waiting.discard(api_id)
            if not waiting:
                return finals
        raise AssertionError("event stream ended")

    try:
        yield until_final
    finally:
        await pubsub.aclose()
        await client.aclose()


async def send_all(
    redis_url: str, store: Store, dispatcher: Dispatcher, messages: Sequence[tuple[str, str]]
) -> list[Record]:
    """Accept ``messages``, hand them to the dispatcher as the arq job does, await final states."""
    async with transitions(redis_url) as until_final, asyncio.timeout(WAIT):
        ids = await accept(store, messages)
        sending = asyncio.create_task(dispatcher.send(ids))
        await until_final(ids)
        await sending
    records = await store.get(ids)
    assert all(r is not None for r in records)
    return [r for r in records if r is not None]


def numbers(count: int, prefix: str = "2782") -> list[str]:
    return [f"{prefix}{n:07d}" for n in range(count)]


def accepted_per_number(sim: Simulator) -> Counter[str]:
    return Counter(s.destination for s in sim.submits if s.status == pdu.ESME_ROK)


# --- defect 14: a dropped connection -----------------------------------------------------------


async def test_a_connection_drop_with_messages_in_flight_loses_nothing(
    redis_url: str, redis: Redis
) -> None:
    # Every connection is dropped after 80 PDUs from us (submits and receipt acks), so several
    # drops hit a full window. The response timeout is far beyond the test's bound: in-flight
    # submits can only be retried in time if the drop fails them at once.
    count = 200
    store = Store(redis, 3600)
    async with simulator(drop_after=80) as sim, worker(
            store, sim.port, response_timeout_seconds=600, max_attempts=20) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "drop test") for to in numbers(count)])
    assert {r.status for r in records} == {"delivered"}
    assert sim.stats()["drops"] >= 2
    dropped = [r for r in records if any(d.startswith("BindDown") for _, _, d in r.transitions())]
    assert dropped  # some were in flight at a drop, and were sent again after the reconnect
    # The SMSC answered nothing it had not recorded, so nothing was accepted twice.
    assert accepted_per_number(sim) == Counter(numbers(count))


# --- defect 5: throttling ----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.05, 0.10])
async def test_throttled_messages_are_retried_until_every_one_is_delivered(
    rate: float, redis_url: str, redis: Redis
) -> None:
    count = 300
    store = Store(redis, 3600)
    # max_attempts 10: a message throttled ten times in a row by chance is a 1e-10 event.
    async with simulator(error_rates={pdu.ESME_RTHROTTLED: rate}, seed=5) as sim, worker(
            store, sim.port, max_attempts=10) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "throttle test") for to in numbers(count)])
    assert {r.status for r in records} == {"delivered"}
    throttled = [s for s in sim.submits if s.status == pdu.ESME_RTHROTTLED]
    assert len(throttled) >= count * rate / 2
    assert accepted_per_number(sim) == Counter(numbers(count))


# --- defect 9: receipt forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_digits", "id_format", "receipt_id_format", "channel_format"),
    [
        (12, "hex", "dec", "auto"),
        (12, "dec", "hex", "auto"),
        (10, "hex", "dec", "hex_to_dec"),
        (12, "hex", "hex", "same"),
        (10, "dec", "dec", "auto"),
    ],
)
async def test_receipts_in_every_id_and_date_form_find_their_message(
    date_digits: int, id_format: str, receipt_id_format: str, channel_format: str,
    redis_url: str, redis: Redis,
) -> None:
    count = 30
    store = Store(redis, 3600)
    async with simulator(date_digits=date_digits, id_format=id_format,
                         receipt_id_format=receipt_id_format) as sim, worker(
            store, sim.port, receipt_id_format=channel_format) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "receipt test") for to in numbers(count)])
    assert {r.status for r in records} == {"delivered"}
    assert {r.fields["dlr_stat"] for r in records} == {"DELIVRD"}
    assert sim.stats()["receipts_acked"] == count


class ScriptedSmsc(asyncio.Protocol):
    """An SMSC whose receipt text the test writes; each receipt leaves in the same TCP write as,
    and just before, the submit_sm_resp of its message (the simulator only writes well-formed
    receipts, and never several PDUs of different kinds in one write on purpose)."""

    def __init__(self, receipt_text: Callable[[int], str], acks: list[int]) -> None:
        self._receipt_text = receipt_text
        self._acks = acks
        self._frames = pdu.PduBuffer()
        self._transport: asyncio.Transport | None = None
        self._next_id = 0x1F00

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        for p in self._frames.feed(data):
            if p.command_id == pdu.BIND_TRANSCEIVER:
                self._answer(p, pdu.encode_c_string("scripted"))
            elif p.command_id in (pdu.ENQUIRE_LINK, pdu.UNBIND):
                self._answer(p)
            elif p.command_id == pdu.DELIVER_SM_RESP:
                self._acks.append(p.status)
            elif p.command_id == pdu.SUBMIT_SM:
                self._submit(p)

    def _answer(self, p: pdu.Pdu, body: bytes = b"") -> None:
        assert self._transport is not None
        self._transport.write(pdu.encode_pdu(p.command_id | pdu.RESP_BIT, 0, p.seq, body))

    def _submit(self, p: pdu.Pdu) -> None:
        assert self._transport is not None
        sm = pdu.ShortMessage.decode(p.body)
        number, self._next_id = self._next_id, self._next_id + 1
        receipt = pdu.ShortMessage(source_addr=sm.destination_addr,
                                   destination_addr=sm.source_addr, esm_class=0x04,
                                   short_message=self._receipt_text(number).encode())
        self._transport.write(
            pdu.encode_pdu(pdu.DELIVER_SM, 0, number, receipt.encode())
            + pdu.encode_pdu(pdu.SUBMIT_SM_RESP, 0, p.seq, pdu.encode_c_string(f"{number:X}")))


@pytest.mark.parametrize("err", ["0x1A", "ABC", "-1", "00G"])
async def test_a_receipt_with_a_non_decimal_err_and_12_digit_dates_is_recorded_and_acked(
    err: str, redis_url: str, redis: Redis
) -> None:
    # Upper-case hex ids in responses, decimal ids in receipts, which come before the response.
    def text(number: int) -> str:
        return (f"id:{number} sub:001 dlvrd:001 submit date:250102030405 "
                f"done date:250102030406 stat:DELIVRD err:{err} text:scripted")

    count = 5
    acks: list[int] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: ScriptedSmsc(text, acks), "127.0.0.1", 0)
    store = Store(redis, 3600)
    try:
        async with worker(store, server.sockets[0].getsockname()[1]) as dispatcher:
            records = await send_all(redis_url, store, dispatcher,
                                     [(to, "hi") for to in numbers(count)])
    finally:
        server.close()
        await server.wait_closed()
    assert {r.status for r in records} == {"delivered"}
    assert {r.fields["dlr_err"] for r in records} == {err}
    assert acks == [pdu.ESME_ROK] * count


# --- defects 10 and 6: vendor statuses and generic_nack -----------------------------------------


async def test_a_vendor_specific_status_fails_its_message_without_resetting_the_session(
    redis_url: str, redis: Redis
) -> None:
    store = Store(redis, 3600)
    vendor, normal = numbers(5, prefix="2799"), numbers(20)
    async with simulator(error_prefixes={"2799": 0x400}) as sim, worker(
            store, sim.port) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "vendor test") for to in vendor + normal])
        reconnects = dispatcher.pools[CHANNEL].reconnects
    by_to = {r.fields["to"]: r for r in records}
    assert {by_to[to].status for to in normal} == {"delivered"}
    assert {(by_to[to].status, by_to[to].fields["err_code"]) for to in vendor} == {
        ("failed", "0x00000400")}
    assert reconnects == 0
    stats = sim.stats()
    assert stats["connections"] == 1 and stats["binds"] == {"transceiver": 1}
    # Failed for good: a permanent status is not retried.
    assert Counter(s.destination for s in sim.submits if s.status == 0x400) == Counter(vendor)


async def test_a_generic_nack_with_a_permanent_status_fails_its_message_as_data(
    redis_url: str, redis: Redis
) -> None:
    store = Store(redis, 3600)
    async with simulator(nack_rate=1.0, nack_status=pdu.ESME_RINVCMDID) as sim, worker(
            store, sim.port) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "nack test") for to in numbers(10)])
        reconnects = dispatcher.pools[CHANNEL].reconnects
    assert {(r.status, r.fields["err_code"]) for r in records} == {("failed", "0x00000003")}
    assert all("generic_nack" in r.fields["err_text"] for r in records)
    assert reconnects == 0 and sim.stats()["connections"] == 1


async def test_a_generic_nack_with_a_transient_status_is_retried_until_delivered(
    redis_url: str, redis: Redis
) -> None:
    count = 100
    store = Store(redis, 3600)
    async with simulator(nack_rate=0.2, nack_status=pdu.ESME_RSYSERR, seed=3) as sim, worker(
            store, sim.port, max_attempts=15) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "nack test") for to in numbers(count)])
    assert {r.status for r in records} == {"delivered"}
    nacked = [r for r in records if any("generic_nack" in d for _, _, d in r.transitions())]
    assert nacked and sim.stats()["generic_nacks"] >= len(nacked)
    assert accepted_per_number(sim) == Counter(numbers(count))


# --- defects 1, 11, 12: splitting -------------------------------------------------------------

EURO_HEAVY = "€" * 100 + "x" * 60  # 160 characters, 260 septets: two parts, not one
EMOJI = "Grüße 😀 " * 12 + "👍🏽 done"  # UCS-2 with surrogate pairs, several parts
_GSM = GSM7BitCodec()


def _units(part: SubmitRecord) -> int:
    """Septets (GSM, escapes count) or UTF-16 units (UCS-2) of one submitted part's text."""
    assert part.text is not None
    if part.data_coding == 0:
        return len(_GSM.encode(part.text)[0])
    return len(part.text.encode("utf-16-be")) // 2


def _concat(part: SubmitRecord, mode: str) -> Concat:
    """The part's concatenation info: SAR TLVs in sar mode, else its UDH."""
    concat = part.sar if mode == "sar" else part.udh
    assert concat is not None
    return concat


@pytest.mark.parametrize("mode", ["udh8", "udh16", "sar"])
@pytest.mark.parametrize(("text", "data_coding"), [(EURO_HEAVY, 0), (EMOJI, 8)],
                         ids=["euro", "emoji"])
async def test_long_texts_are_split_to_parts_that_fit_one_sms_and_reassemble(
    mode: str, text: str, data_coding: int, redis_url: str, redis: Redis
) -> None:
    store = Store(redis, 3600)
    async with simulator() as sim, worker(store, sim.port, split_mode=mode) as dispatcher:
        (record,) = await send_all(redis_url, store, dispatcher, [("27820000001", text)])
    assert record.status == "delivered"  # every part was submitted and receipted
    parts = sim.submits
    concat = [_concat(p, mode) for p in parts]
    assert len({c.ref for c in concat}) == 1
    assert sorted(c.seq for c in concat) == list(range(1, len(parts) + 1))
    assert {c.total for c in concat} == {len(parts)} == {analyse(text).segments}
    assert len(parts) >= 2
    assert {p.data_coding for p in parts} == {data_coding}
    ordered = sorted(parts, key=lambda p: _concat(p, mode).seq)
    assert "".join(p.text or "" for p in ordered) == text
    # Fits one SMS with the 6- or 7-octet concatenation header the SMSC or we put in front.
    limit = {(0, "udh16"): 152, (8, "udh16"): 66, (0, "udh8"): 153, (8, "udh8"): 67,
             (0, "sar"): 153, (8, "sar"): 67}[(data_coding, mode)]
    assert max(_units(p) for p in parts) <= limit


# --- a receipt that arrives before its submit_sm_resp ------------------------------------------


@pytest.mark.parametrize(
    ("text", "id_format", "receipt_id_format"),
    [("early receipt", "hex", "hex"), ("early receipt", "hex", "dec"), ("z" * 400, "dec", "hex")],
    ids=["same-form", "hex-then-dec", "three-parts-dec-then-hex"],
)
async def test_a_receipt_before_its_submit_response_is_held_and_matched(
    text: str, id_format: str, receipt_id_format: str, redis_url: str, redis: Redis
) -> None:
    count = 40
    store = Store(redis, 3600)
    async with simulator(receipt_before_response=True, id_format=id_format,
                         receipt_id_format=receipt_id_format) as sim, worker(
            store, sim.port) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, text) for to in numbers(count)])
    assert {r.status for r in records} == {"delivered"}
    assert sim.stats()["receipts_acked"] == count * analyse(text).segments


# --- defect 4: the window -------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 4])
async def test_the_worker_never_has_more_than_window_submits_outstanding_per_bind(
    window: int, redis_url: str, redis: Redis
) -> None:
    count = 60
    store = Store(redis, 3600)
    # The simulator answers ESME_RMSGQFUL beyond `window` unanswered submits on a bind; the
    # answer delay keeps the window full.
    async with simulator(window=window, ack_delay=0.01) as sim, worker(
            store, sim.port, window=window) as dispatcher:
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "window test") for to in numbers(count)])
    assert {r.status for r in records} == {"delivered"}
    assert [s for s in sim.submits if s.status == pdu.ESME_RMSGQFUL] == []
    assert len(sim.submits) == count


# --- defect 2: Redis failing while recording ----------------------------------------------------


class FlakyStore(Store):
    """The real store, but the first ``fail`` calls of each recording operation meet a Redis
    connection error, as during a brief Redis outage."""

    def __init__(self, redis: Redis, fail: int) -> None:
        super().__init__(redis, 3600)
        self.failures: dict[str, int] = defaultdict(lambda: fail)

    def _fail(self, op: str) -> None:
        if self.failures[op] > 0:
            self.failures[op] -= 1
            raise redis.exceptions.ConnectionError(f"injected: {op}")

    async def record_outcomes(self, outcomes: Sequence[Outcome], *, dlr_ttl_seconds: int,
                              smsc_accounts: Mapping[str, str] | None = None) -> int:
        self._fail("outcomes")
        return await super().record_outcomes(outcomes, dlr_ttl_seconds=dlr_ttl_seconds,
                                             smsc_accounts=smsc_accounts)

    async def record_receipts(
        self, receipts: Sequence[ReceiptEvent], *, held_ttl_seconds: int
    ) -> list[str]:
        self._fail("receipts")
        return await super().record_receipts(receipts, held_ttl_seconds=held_ttl_seconds)


async def test_redis_errors_while_recording_end_neither_the_session_nor_the_worker(
    redis_url: str, redis: Redis
) -> None:
    store = FlakyStore(redis, fail=1)
    async with simulator() as sim, worker(store, sim.port) as dispatcher:
        async with asyncio.timeout(WAIT):
            (first,) = await accept(store, [("27820000000", "first")])
            await dispatcher.send([first])  # its outcome is recorded despite one failure
            # Its receipt met the other failure; it is answered either way (recorded on a
            # second try, or refused so that the SMSC sends it again), and the session goes on.
            await sim.wait_for_receipts_acked(1)
        records = await send_all(redis_url, store, dispatcher,
                                 [(to, "after") for to in numbers(20, prefix="2783")])
        reconnects = dispatcher.pools[CHANNEL].reconnects
    assert store.failures == {"outcomes": 0, "receipts": 0}
    (rec,) = await store.get([first])
    assert rec is not None and rec.status in ("submitted", "delivered") and rec.fields["smsc_ids"]
    assert {r.status for r in records} == {"delivered"}
    assert reconnects == 0 and sim.stats()["connections"] == 1


@pytest.mark.parametrize("trouble", [{"error_rates": {0x58: 0.1}, "seed": 5},
                                     {"drop_after": 80}])
async def test_a_part_accepted_once_is_never_submitted_again_when_a_later_part_is_retried(
    redis_url: str, redis: Redis, trouble: dict[str, Any]
) -> None:
    store = Store(redis, 3600)
    async with simulator(**trouble) as sim, worker(store, sim.port, max_attempts=20) as d:
        records = await send_all(redis_url, store, d, [(to, "y" * 200) for to in numbers(100)])
    assert {r.status for r in records} == {"delivered"}
    accepted = Counter((s.destination, s.udh.seq) for s in sim.submits
                       if s.status == 0 and s.udh is not None)
    assert len(accepted) == 200
    # A drop may lose the answer to a part on the wire (the one allowed duplicate); throttling
    # answers every part, so nothing may be accepted twice.
    allowed = sim.stats()["drops"] if "drop_after" in trouble else 0
    assert sum(n - 1 for n in accepted.values()) <= allowed


async def test_throttling_spends_no_attempts(redis_url: str, redis: Redis) -> None:
    # One attempt allowed: a throttled submit that counted as an attempt would fail its message.
    store = Store(redis, 3600)
    async with simulator(error_rates={0x58: 0.1}, seed=3) as sim, \
            worker(store, sim.port, max_attempts=1) as d:
        records = await send_all(redis_url, store, d, [(to, "paced") for to in numbers(300)])
    assert {r.status for r in records} == {"delivered"}
    assert sim.stats()["responses"].get("ESME_RTHROTTLED", 0) > 0


async def test_a_message_paused_by_throttling_leaves_its_slot_to_the_next(
    redis_url: str, redis: Redis
) -> None:
    # One slot (1 bind, window 1) and an SMSC that throttles every submit to A's number. While
    # A pauses before resending, nothing of it is on the wire or unrecorded, so B goes out.
    store = Store(redis, 3600)
    a_to, b_to = "27829990001", "27820000001"
    async with (simulator(error_prefixes={"2782999": pdu.ESME_RTHROTTLED}) as sim,
                worker(store, sim.port, reap_interval=3600, window=1) as dispatcher,
                transitions(redis_url) as until_final, asyncio.timeout(WAIT)):
        (a,) = await accept(store, [(a_to, "throttled")])
        (b,) = await accept(store, [(b_to, "next")])
        sending = asyncio.create_task(dispatcher.send([a, b]))
        assert await until_final([b]) == {b: "delivered"}
        await sending  # A goes back to the queue after its paced resends
    to_a = [i for i, s in enumerate(sim.submits) if s.destination == a_to]
    to_b = [i for i, s in enumerate(sim.submits) if s.destination == b_to]
    assert to_a[0] == 0 and len(to_a) > 1  # A had the slot first and was resent
    assert to_b[0] < to_a[1]


async def test_the_reaper_drains_a_backlog_of_several_batches_without_pausing(
    redis_url: str, redis: Redis
) -> None:
    # No wake-up job runs here, and the reaper's pause is longer than the test may take: only
    # going on at once after a full batch (100 here) gets all 250 messages sent.
    store = Store(redis, 3600)
    async with (simulator() as sim, transitions(redis_url) as until_final,
                worker(store, sim.port, reap_interval=3600) as dispatcher,
                asyncio.timeout(WAIT)):
        ids = await accept(store, [(n, "backlog") for n in numbers(250)])
        reaper = asyncio.create_task(dispatcher.reap_forever())  # its first round: now
        try:
            finals = await until_final(ids)
        finally:
            reaper.cancel()
            await asyncio.gather(reaper, return_exceptions=True)
    assert set(finals.values()) == {"delivered"}
    assert len(accepted_per_number(sim)) == 250
