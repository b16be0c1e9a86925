"""Bind lifecycle against real TCP peers: bad credentials, a dead peer, a clean unbind."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from tests.integration.support import running_simulator
from worker.bindcap import BindLeases
from worker.config import Channel
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.smpp import pdu
from worker.smpp.pool import ChannelPool
from worker.store import Store

pytestmark = pytest.mark.integration


async def _no_deliver(sm: pdu.ShortMessage) -> int:
    return pdu.ESME_ROK


def _channel(port: int, **extra: object) -> Channel:
    base: dict[str, object] = {"name": "sim", "port": port, "system_id": "smsgw",
                               "password": "secret", "reconnect_min_seconds": 0.05,
                               "reconnect_max_seconds": 0.1}
    return Channel(**{**base, **extra})  # type: ignore[arg-type]


class _LogEvent(logging.Handler):
    """Sets an event when a log line containing ``text`` is written."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


async def test_a_refused_bind_is_logged_clearly_and_retried_slowly(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "other"}))
    await sim.start()
    pool = ChannelPool(_channel(sim.port, bind_refused_retry_seconds=30), _no_deliver, "w",
                       BindLeases(Store(redis, 60), "w"))
    try:
        refused = _LogEvent("bind refused")
        logging.getLogger("smsgw.smpp").addHandler(refused)
        with caplog.at_level(logging.ERROR, logger="smsgw.smpp"):
            pool.start()
            async with asyncio.timeout(10):
                await refused.seen.wait()
        logging.getLogger("smsgw.smpp").removeHandler(refused)
        assert "ESME_RINVPASWD" in caplog.text and "retrying in 30s" in caplog.text
        assert sim.stats()["bind_failures"] == {"ESME_RINVPASWD": 1}  # not hammered
        assert "secret" not in caplog.text  # the password is never logged
    finally:
        await pool.stop(1.0)
        await sim.stop()


async def test_a_peer_that_stops_answering_enquire_link_is_dropped_and_rebound(
    redis: Redis,
) -> None:
    connections: list[asyncio.StreamWriter] = []
    bound, rebound = asyncio.Event(), asyncio.Event()

    async def silent_after_bind(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        if len(connections) == 2:
            rebound.set()
        header = await reader.readexactly(16)
        length, command, _, seq = (int.from_bytes(header[i:i + 4], "big") for i in range(0, 16, 4))
        await reader.readexactly(length - 16)
        writer.write(pdu.encode_pdu(command | pdu.RESP_BIT, 0, seq, b"smsc\x00"))
        bound.set()
        await reader.read()  # swallow enquire_links, never answer

    server = await asyncio.start_server(silent_after_bind, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = ChannelPool(_channel(port, enquire_link_seconds=0.2, response_timeout_seconds=0.3),
                       _no_deliver, "w", BindLeases(Store(redis, 60), "w"))
    try:
        pool.start()
        async with asyncio.timeout(10):
            await bound.wait()
            await rebound.wait()  # the dead bind was detected and replaced
        assert pool.reconnects >= 1
    finally:
        await pool.stop(0.5)
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


async def test_stopping_a_pool_unbinds_cleanly_and_frees_its_bind_slots(redis: Redis) -> None:
    async with running_simulator() as sim:
        pool = ChannelPool(_channel(sim.port, binds=2), _no_deliver, "w",
                           BindLeases(Store(redis, 60), "w"))
        pool.start()
        async with asyncio.timeout(10):
            await sim.wait_bound("smsgw", 1)
        await pool.stop(1.0)
        assert sim.stats()["unbinds"] >= 1 and sim.bound("smsgw") == 0
    assert [k async for k in redis.scan_iter("smsgw:bind:*")] == []
