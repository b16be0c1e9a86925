"""Messages an SMPP client concatenated itself (UDH with an 8- or 16-bit ref, or SAR TLVs),
end to end: smpplib over TCP → the SMPP server → Redis → a worker → the SMSC double, which must
see one message with the joined text, however the parts came."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq.worker import Worker
from redis.asyncio import Redis

from gateway.smpp_server import concat
from gateway.smpp_server.server import SmppServer, running
from gateway.smpp_server.users import SmppUserSpec, create_user
from gateway.validate import Rules
from tests.integration.support import (
    channel_env,
    running_simulator,
    start_worker,
    stop_all,
    stop_in_process_worker,
)
from tests.integration.test_smpp_server import (
    add_user,
    bound_esme,
    in_thread,
    smpp_settings,
)
from tests.smsc_double import ScriptedSmsc
from worker.config import load_settings
from worker.encoding import decode_text, parse_udh
from worker.jobs import arq_settings
from worker.store import NewMessage, NewPart, Store, Wake, msg_key, parts_key
from worker.store.smpp_server import SmppServerStore

pytestmark = pytest.mark.integration

TO = "+27820000001"
UCS2 = 0x08
ESME_RINVESMCLASS = 0x43
ESME_RINVPARLEN = 0xC2
ESME_RSYSERR = 0x08
Extra = dict[str, Any]


def udh8(ref: int, total: int, seq: int) -> bytes:
    return bytes((5, 0x00, 3, ref, total, seq))


def udh16(ref: int, total: int, seq: int) -> bytes:
    # with other elements before and after the concatenation one
    return bytes((12, 0x24, 1, 0, 0x08, 4, ref >> 8, ref & 0xFF, total, seq, 0x25, 1, 0))


def parts(form: str, chunks: list[bytes], ref: int = 7, coding: int = 0,
          total: int | None = None, to: str = TO) -> list[tuple[str, bytes, Extra]]:
    """(to, short_message, fields) of each part, in part order."""
    n = total or len(chunks)
    out: list[tuple[str, bytes, Extra]] = []
    for seq, chunk in enumerate(chunks, 1):
        if form == "sar":
            out.append((to, chunk, {"data_coding": coding, "sar_msg_ref_num": ref,
                                    "sar_total_segments": n, "sar_segment_seqnum": seq}))
        else:
            udh = udh8(ref, n, seq) if form == "udh8" else udh16(ref, n, seq)
            out.append((to, udh + chunk, {"esm_class": 0x40, "data_coding": coding}))
    return out


def texts_at(smsc: ScriptedSmsc) -> list[str]:
    """The texts the SMSC has whole: its submits' UDH parts joined again."""
    whole: list[str] = []
    groups: dict[tuple[str, int], dict[int, str]] = {}
    for sm in smsc.submits:
        concat, body = parse_udh(sm.short_message) if sm.esm_class & 0x40 else (None, b"")
        if concat is None:
            whole.append(decode_text(sm.payload(), sm.data_coding))
            continue
        got = groups.setdefault((sm.destination_addr, concat.ref), {})
        got[concat.seq] = decode_text(body, sm.data_coding)
        if len(got) == concat.total:
            whole.append("".join(got[s] for s in sorted(got)))
    return whole


@contextlib.asynccontextmanager
async def gateway(redis_url: str, **server: Any) -> AsyncIterator[tuple[ScriptedSmsc,
                                                                        SmppServer]]:
    """The SMSC double, a worker sending to it, and an SMPP server."""
    async with ScriptedSmsc() as smsc:
        settings = smpp_settings(redis_url, smsc.port, **server)
        worker = Worker(**arq_settings(settings), handle_signals=False)
        task = asyncio.create_task(worker.async_run())
        try:
            async with running(settings, "127.0.0.1", 0) as srv:
                yield smsc, srv
        finally:
            await stop_in_process_worker(worker, task)


async def submitted(port: int, system_id: str, password: str,
                    items: list[tuple[str, bytes, Extra]], window: int = 1,
                    kind: str = "transmitter") -> list[tuple[int, str]]:
    """Bind, submit each item (``window`` unanswered at most), close: the answers."""
    async with bound_esme(port, kind, password, system_id) as esme:
        return await in_thread(esme.submit_each, items, window)


async def arrived(smsc: ScriptedSmsc, *texts: str) -> None:
    await smsc.wait_for(lambda: sorted(texts_at(smsc)) == sorted(texts), within=30)


# A UCS-2 text cut at odd octets: a character's two octets straddle each cut.
UCS2_TEXT = "Grüße aus Kapstadt — bis bald!"
_U = UCS2_TEXT.encode("utf-16-be")
UCS2_CHUNKS = [_U[:21], _U[21:43], _U[43:]]


@pytest.mark.parametrize("form", ["udh8", "udh16", "sar"])
async def test_a_three_part_message_reaches_the_smsc_as_one_text(
    redis_url: str, redis: Redis, form: str,
) -> None:
    password = await add_user(redis)
    async with gateway(redis_url) as (smsc, srv):
        answers = await submitted(srv.port, "acme1", password,
                                  parts(form, UCS2_CHUNKS, ref=300 if form != "udh8" else 7,
                                        coding=UCS2))
        await arrived(smsc, UCS2_TEXT)
    assert [s for s, _ in answers] == [0, 0, 0]
    ids = [i for _, i in answers]
    api_id = ids[0].rsplit("-", 1)[0]
    assert ids == [f"{api_id}-1", f"{api_id}-2", f"{api_id}-3"]
    [record] = await Store(redis, 3600).get([api_id])
    assert record is not None and record.fields["content"] == UCS2_TEXT
    assert record.fields["parts"] == ",".join(ids) and record.fields["concat"] == "3/3"


async def test_parts_out_of_order_make_the_message_in_part_order(
    redis_url: str, redis: Redis,
) -> None:
    # GSM 03.38: the euro sign is the escape 0x1B then 0x65, cut between parts 1 and 2
    chunks = [b"Price: 5\x1b", b"e only", b" today"]
    password = await add_user(redis)
    async with gateway(redis_url) as (smsc, srv):
        items = parts("udh8", chunks)
        answers = await submitted(srv.port, "acme1", password,
                                  [items[2], items[0], items[1]])
        await arrived(smsc, "Price: 5€ only today")
    assert [s for s, _ in answers] == [0, 0, 0]
    assert sorted(i[-2:] for _, i in answers) == ["-1", "-2", "-3"]


async def test_a_repeated_part_gets_its_first_id_and_is_sent_once(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis)
    async with gateway(redis_url) as (smsc, srv):
        items = parts("udh8", [b"one ", b"two ", b"three"])
        answers = await submitted(srv.port, "acme1", password,
                                  [items[0], items[1], items[0], items[2], items[2]])
        await arrived(smsc, "one two three")
    assert [s for s, _ in answers] == [0] * 5
    ids = [i for _, i in answers]
    assert ids[0] == ids[2] and ids[3] == ids[4] and len(set(ids)) == 3
    api_id = ids[0].rsplit("-", 1)[0]
    [record] = await Store(redis, 3600).get([api_id])
    assert record is not None and record.fields["content"] == "one two three"
    assert texts_at(smsc) == ["one two three"]


async def test_a_new_message_reusing_a_sent_ones_ref_and_first_part_is_sent_whole(
    redis_url: str, redis: Redis,
) -> None:
    # Within concat_wait_seconds of the first, the same ref and the same first part: the first
    # part was taken as a repeat and the second message sent without it.
    password = await add_user(redis)
    async with gateway(redis_url) as (smsc, srv):
        first = parts("udh8", [b"Your code is ", b"1234"])
        second = parts("udh8", [b"Your code is ", b"5678"])
        answers = await submitted(srv.port, "acme1", password, first + second)
        await arrived(smsc, "Your code is 1234", "Your code is 5678")
    assert [s for s, _ in answers] == [0] * 4


async def test_two_clients_messages_with_the_same_ref_do_not_mix(
    redis_url: str, redis: Redis,
) -> None:
    acme = await add_user(redis)
    beta, _ = await create_user(SmppServerStore(redis),
                                SmppUserSpec(system_id="beta1", account="beta"))
    async with gateway(redis_url) as (smsc, srv):
        a = parts("udh8", [b"acme says ", b"hello"], ref=9)
        b = parts("udh8", [b"beta says ", b"goodbye"], ref=9)
        first = await asyncio.gather(submitted(srv.port, "acme1", acme, a[:1]),
                                     submitted(srv.port, "beta1", beta, b[:1]))
        second = await asyncio.gather(submitted(srv.port, "beta1", beta, b[1:]),
                                      submitted(srv.port, "acme1", acme, a[1:]))
        await arrived(smsc, "acme says hello", "beta says goodbye")
    assert [s for answers in (*first, *second) for s, _ in answers] == [0, 0, 0, 0]


async def test_an_incomplete_message_is_sent_with_what_arrived_after_the_wait(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis)
    # long enough for both parts to be in before it ends, even on a busy machine
    async with gateway(redis_url, concat_wait_seconds=2) as (smsc, srv):
        items = parts("sar", [b"first ", b"second ", b"third"])
        answers = await submitted(srv.port, "acme1", password, [items[0], items[2]],
                                  window=2)
        await smsc.wait_for(lambda: texts_at(smsc) == ["first third"], within=30)
    ids = [i for _, i in answers]
    api_id = ids[0].rsplit("-", 1)[0]
    [record] = await Store(redis, 3600).get([api_id])
    assert record is not None and record.fields["concat"] == "2/3"
    assert record.fields["parts"] == f"{api_id}-1,{api_id}-3"


async def test_parts_that_contradict_their_message_are_refused_and_change_nothing(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis)
    group = parts_key("acme", "", TO[1:], 8, 7)
    async with running(smpp_settings(redis_url), "127.0.0.1", 0) as srv:
        [(status, _)] = await submitted(srv.port, "acme1", password,
                                        parts("udh8", [b"a", b"b", b"c"])[:1])
        assert status == 0
        before = await redis.hgetall(group)
        assert before  # the group the next parts contradict (its key as the server spells it)
        other_total = parts("udh8", [b"a", b"b", b"c", b"d"])[1]
        seq_zero = (TO, udh8(7, 3, 0) + b"x", {"esm_class": 0x40})
        seq_over = (TO, udh8(7, 3, 4) + b"x", {"esm_class": 0x40})
        bad_header = (TO, b"\x09\x00\x03\x07", {"esm_class": 0x40})
        sar_half = (TO, b"x", {"sar_msg_ref_num": 7, "sar_segment_seqnum": 1})
        answers = await submitted(srv.port, "acme1", password,
                                  [other_total, seq_zero, seq_over, bad_header, sar_half])
        assert [s for s, _ in answers] == [ESME_RINVESMCLASS] * 4 + [ESME_RINVPARLEN]
        assert await redis.hgetall(group) == before
    assert [k async for k in redis.scan_iter(msg_key("*"))] == []


async def test_every_part_id_gets_a_receipt_when_the_message_ends(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    async with running_simulator() as sim:
        env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port)
        password = await add_user(redis)
        worker = None
        try:
            worker = await start_worker(env)
            async with running(load_settings(env), "127.0.0.1", 0) as srv:
                async with bound_esme(srv.port, "transceiver", password) as esme:
                    answers = await in_thread(
                        esme.submit_each, parts("udh16", [b"receipt ", b"for ", b"all"]), 1)
                    receipts = await in_thread(esme.read_receipts, 3)
        finally:
            await stop_all([worker])
    ids = [i for _, i in answers]
    assert sorted(r.receipted_id for r in receipts) == sorted(ids)
    assert {r.text.split(" ")[0] for r in receipts} == {f"id:{i}" for i in ids}


async def test_parts_that_cannot_be_sent_are_kept_and_do_not_hold_up_the_sweep(
    redis: Redis,
) -> None:
    # Stored for a channel the configuration has since dropped: the message cannot be built.
    store = Store(redis, 3600)
    rules = Rules(default_channel="sim", default_country_code="27", max_segments=10,
                  channels={"sim": "udh8"})
    message = NewMessage(api_id="M1", account="acme", channel="gone", to="27820000001",
                         content="", encoding="", segments=0, door="smpp", source="ACME")
    part = NewPart(message=message, ref_bits=8, ref=1, total=2, seq=1, data_coding=0,
                   octets=b"half")
    wake = Wake("wake1", b"job", 60)
    assert (await store.store_part(part, None, wait_ms=0, wake=wake)).kind == "stored"
    assert await concat.sweep(store, rules, 0, lambda: wake) == []
    assert await store.due_groups(10) == []  # after another wait, not at every sweep
    assert await redis.hget(part.group, "p:1") == b"half"


async def test_a_part_the_store_script_fails_on_is_answered_esme_rsyserr(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis)
    await redis.set(parts_key("acme", "", TO[1:], 8, 7), "not a hash")  # WRONGTYPE
    async with running(smpp_settings(redis_url), "127.0.0.1", 0) as srv:
        answers = await submitted(srv.port, "acme1", password, parts("udh8", [b"a", b"b"]))
    assert [s for s, _ in answers] == [ESME_RSYSERR, ESME_RSYSERR]
