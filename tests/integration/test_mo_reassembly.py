"""A concatenated MO message split inside a character (between the two halves of a UTF-16
surrogate pair, between a GSM escape and its code) is stored whole: a real worker bound to the
scripted SMSC double gets the parts, joins their bytes, then decodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from arq.worker import Worker
from redis.asyncio import Redis

from tests.integration.support import stop_in_process_worker
from tests.smsc_double import ScriptedSmsc
from worker.config import settings_from_dict
from worker.jobs import arq_settings
from worker.smpp import pdu
from worker.store import Store

pytestmark = pytest.mark.integration

FROM, TO = "27821234567", "12345"


@pytest.fixture
async def smsc(redis_url: str) -> AsyncIterator[ScriptedSmsc]:
    """The double, with a real worker bound to it (in this process, as arq runs it)."""
    async with ScriptedSmsc() as double:
        settings = settings_from_dict(
            {"channels": {"sim": {"port": double.port, "system_id": "smsgw",
                                  "password": "secret"}}},
            {"REDIS_URL": redis_url}, source="test")
        worker = Worker(**arq_settings(settings), handle_signals=False)
        task = asyncio.create_task(worker.async_run())
        try:
            yield double
        finally:
            await stop_in_process_worker(worker, task)


def _udh8(ref: int, total: int, seq: int) -> bytes:
    return bytes((5, 0x00, 3, ref, total, seq))


def _udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes((6, 0x08, 4)) + ref.to_bytes(2, "big") + bytes((total, seq))


Framing = Callable[[list[bytes], int], list[pdu.ShortMessage]]


def _udh_parts(bodies: list[bytes], coding: int) -> list[pdu.ShortMessage]:
    return [pdu.ShortMessage(source_addr=FROM, destination_addr=TO, esm_class=0x40,
                             data_coding=coding, short_message=_udh8(7, len(bodies), seq) + b)
            for seq, b in enumerate(bodies, 1)]


def _sar_parts(bodies: list[bytes], coding: int) -> list[pdu.ShortMessage]:
    return [pdu.ShortMessage(
        source_addr=FROM, destination_addr=TO, data_coding=coding, short_message=b,
        tlvs={pdu.SAR_MSG_REF_NUM: b"\x01\x02", pdu.SAR_TOTAL_SEGMENTS: bytes((len(bodies),)),
              pdu.SAR_SEGMENT_SEQNUM: bytes((seq,))})
        for seq, b in enumerate(bodies, 1)]


async def _stored_text(smsc: ScriptedSmsc, redis: Redis, parts: list[pdu.ShortMessage]) -> str:
    conn = await smsc.bound_connection()
    for part in parts:  # each acknowledged only once recorded
        assert (await conn.deliver(part)).status == pdu.ESME_ROK
    (mo,) = await Store(redis, 3600).mo_messages("sim", 10)
    assert (mo["from"], mo["parts"]) == (FROM, str(len(parts)))
    return mo["text"]


EMOJI = "😀".encode("utf-16-be")  # D83D DE00


@pytest.mark.parametrize("framing", [_udh_parts, _sar_parts], ids=["udh", "sar"])
async def test_an_mo_split_between_the_halves_of_a_surrogate_pair_is_stored_whole(
    smsc: ScriptedSmsc, redis: Redis, framing: Framing,
) -> None:
    bodies = ["ab".encode("utf-16-be") + EMOJI[:2], EMOJI[2:] + "cd".encode("utf-16-be")]
    assert await _stored_text(smsc, redis, framing(bodies, 8)) == "ab😀cd"


async def test_an_mo_split_between_a_gsm_escape_and_its_code_is_stored_whole(
    smsc: ScriptedSmsc, redis: Redis,
) -> None:
    assert await _stored_text(smsc, redis, _udh_parts([b"x\x1b", b"\x65y"], 0)) == "x€y"


async def test_mo_parts_arriving_out_of_order_are_joined_in_sequence(
    smsc: ScriptedSmsc, redis: Redis,
) -> None:
    parts = [pdu.ShortMessage(source_addr=FROM, destination_addr=TO, esm_class=0x40,
                              short_message=_udh16(0xBEEF, 3, seq) + body)
             for seq, body in ((3, b"\x65!"), (1, b"one "), (2, b"two \x1b"))]
    assert await _stored_text(smsc, redis, parts) == "one two €!"
