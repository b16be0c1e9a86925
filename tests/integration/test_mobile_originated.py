"""Mobile-originated messages: recorded before they are acknowledged, reassembled when split."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from arq.worker import Worker
from redis.asyncio import Redis

from tests.integration.support import stop_in_process_worker
from worker.config import settings_from_dict
from worker.jobs import arq_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.smpp import pdu
from worker.store import EVENTS, Store

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]


@pytest.fixture
async def running(redis_url: str) -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await sim.start()
    settings = settings_from_dict(
        {"channels": {"sim": {"port": sim.port, "system_id": "smsgw", "password": "secret"}}},
        {"REDIS_URL": redis_url}, source="test")
    worker = Worker(**arq_settings(settings), handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        yield sim
    finally:
        await stop_in_process_worker(worker, task)
        await sim.stop()


def _udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes((6, 0x08, 4)) + ref.to_bytes(2, "big") + bytes((total, seq))


async def _next_mo(redis: Redis, send: list[pdu.ShortMessage], sim: Simulator) -> str:
    async with redis.pubsub() as pubsub, asyncio.timeout(20):
        await pubsub.subscribe(EVENTS)
        await sim.wait_bound("smsgw", 1)
        for message in send:
            sim.send_mo("smsgw", message)
        async for msg in pubsub.listen():
            if msg["type"] == "message" and msg["data"].decode().endswith(" mo"):
                return str(msg["data"].decode().split()[0])
    raise AssertionError("unreachable")


async def test_a_two_part_mo_with_a_16_bit_reference_is_reassembled(
    running: Simulator, redis: Redis
) -> None:
    parts = [
        pdu.ShortMessage(source_addr="27821234567", destination_addr="12345", esm_class=0x40,
                         short_message=_udh16(0x1234, 2, seq) + text.encode())
        for seq, text in ((2, "world"), (1, "hello "))  # out of order on purpose
    ]
    mo_id = await _next_mo(redis, parts, running)
    (mo,) = await Store(redis, 3600).mo_messages("sim", 10)
    assert mo["id"] == mo_id and mo["text"] == "hello world" and mo["from"] == "27821234567"
    assert mo["parts"] == "2"
    await running.wait_for_receipts_acked(2)  # acknowledged once recorded


async def test_a_single_ucs2_mo_is_recorded_with_its_text(
    running: Simulator, redis: Redis
) -> None:
    message = pdu.ShortMessage(source_addr="27821234567", destination_addr="12345",
                               data_coding=8, short_message="Привет 😀".encode("utf-16-be"))
    await _next_mo(redis, [message], running)
    (mo,) = await Store(redis, 3600).mo_messages("sim", 10)
    assert mo["text"] == "Привет 😀" and mo["to"] == "12345"
