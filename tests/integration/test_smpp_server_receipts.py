"""Receipts back to SMPP clients, end to end: smpplib over TCP → the SMPP server → Redis → a real
worker process → the SMSC simulator, and the simulator's receipts back to the client as
deliver_sm (esm_class 0x04, receipted_message_id, message_state)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.smpp_server.server import running
from tests.esme import Esme
from tests.integration.support import (
    channel_env,
    numbers,
    running_simulator,
    start_worker,
    stop_all,
    wait_final,
)
from tests.integration.test_smpp_server import add_user, in_thread
from worker.config import load_settings

pytestmark = pytest.mark.integration

DELIVERED = 2  # message_state


async def test_a_thousand_submits_in_windows_of_fifty_get_a_thousand_matching_receipts(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    async with running_simulator() as sim:
        env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port, binds=2, window=50)
        settings = load_settings(env)
        password = await add_user(redis)
        worker = None
        esme = None
        try:
            worker = await start_worker(env)
            async with running(settings, "127.0.0.1", 0) as server:
                esme = Esme(server.port).connect()
                assert await in_thread(esme.bind, "transceiver", "acme1", password) == 0
                items = [(f"+{n}", f"message {i}".encode())
                         for i, n in enumerate(numbers(1000))]
                answers = await in_thread(esme.submit_all, items, 50)
                receipts = await in_thread(esme.read_receipts, 1000)
                await in_thread(esme.unbind)
        finally:
            if esme is not None:
                await in_thread(esme.close)
            await stop_all([worker])
    ids = [api_id for status, api_id in answers]
    assert all(status == 0 for status, _ in answers) and len(set(ids)) == 1000
    assert sorted(r.receipted_id for r in receipts) == sorted(ids)
    assert {(r.esm_class, r.message_state) for r in receipts} == {(0x04, DELIVERED)}
    first = receipts[0]
    assert first.text.startswith(f"id:{first.receipted_id} sub:001 dlvrd:001 submit date:")
    assert " stat:DELIVRD err:000 text:message " in first.text


async def test_a_transmitter_that_binds_as_receiver_later_gets_its_queued_receipts(
    redis_url: str, redis: Redis, tmp_path: Path,
) -> None:
    async with running_simulator() as sim:
        env = channel_env(tmp_path / "smsgw.toml", redis_url, sim.port)
        settings = load_settings(env)
        password = await add_user(redis)
        worker = None
        try:
            worker = await start_worker(env)
            async with running(settings, "127.0.0.1", 0) as server:
                tx = Esme(server.port).connect()
                try:
                    assert await in_thread(tx.bind, "transmitter", "acme1", password) == 0
                    answers = await in_thread(
                        tx.submit_all, [(f"+{n}", b"later") for n in numbers(20)], 10)
                    await in_thread(tx.unbind)
                finally:
                    await in_thread(tx.close)
                ids = [api_id for _, api_id in answers]
                async with asyncio.timeout(60):
                    finals = await wait_final(redis_url, ids)
                assert set(finals.values()) == {"delivered"}
                rx = Esme(server.port).connect()
                try:
                    assert await in_thread(rx.bind, "receiver", "acme1", password) == 0
                    receipts = await in_thread(rx.read_receipts, 20)
                finally:
                    await in_thread(rx.close)
        finally:
            await stop_all([worker])
    assert sorted(r.receipted_id for r in receipts) == sorted(ids)
