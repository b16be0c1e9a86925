"""The SMPP server with a real SMPP client library (smpplib) over TCP and a real Redis: binds,
submit_sm into the same store as HTTP sends, and the status codes of what it refuses."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.smpp_server.server import SmppServer, running
from gateway.smpp_server.users import SmppUserSpec, create_user
from tests.esme import Esme
from worker.config import Settings, settings_from_dict
from worker.smpp.pdu import SUBMIT_SM, ShortMessage, encode_pdu
from worker.store import Store
from worker.store.smpp_server import SmppServerStore

pytestmark = pytest.mark.integration

ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RTHROTTLED = 0x58
ESME_RINVBNDSTS = 0x04
ESME_RINVCMDID = 0x03
ESME_RINVCMDLEN = 0x02
GENERIC_NACK = 0x80000000


def smpp_settings(redis_url: str, sim_port: int = 2775, **server: Any) -> Settings:
    return settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": {"port": sim_port, "password": "secret"}},
         "smpp_server": {"auth_failures_free": 100, **server}},
        {"REDIS_URL": redis_url}, source="test")


@pytest.fixture
async def server(redis_url: str) -> AsyncIterator[SmppServer]:
    async with running(smpp_settings(redis_url), "127.0.0.1", 0) as srv:
        yield srv


async def add_user(redis: Redis, system_id: str = "acme1", password: str | None = None,
                   **spec: Any) -> str:
    made, _ = await create_user(SmppServerStore(redis),
                                SmppUserSpec(system_id=system_id, account="acme", **spec),
                                password=password)
    return made


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    async with asyncio.timeout(60):
        return await asyncio.to_thread(fn, *args, **kwargs)


@asynccontextmanager
async def bound_esme(port: int, kind: str, password: str,
                     system_id: str = "acme1") -> AsyncIterator[Esme]:
    """A client connected and bound as ``kind`` (the bind must succeed), closed on exit."""
    esme = Esme(port).connect()
    try:
        assert await in_thread(esme.bind, kind, system_id, password) == 0
        yield esme
    finally:
        await in_thread(esme.close)


async def test_a_submit_sm_is_stored_as_a_message_and_answered_with_its_api_message_id(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis)
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "transceiver", "acme1", password) == 0
        [(status, api_id)] = await in_thread(esme.submit_all,
                                             [("+27820000001", b"hello over smpp")], 1)
    finally:
        await in_thread(esme.close)
    assert status == 0 and api_id
    [record] = await Store(redis, 3600).get([api_id])
    assert record is not None
    assert record.fields["account"] == "acme" and record.fields["door"] == "smpp"
    assert record.fields["to"] == "27820000001" and record.status == "queued"
    assert record.fields["content"] == "hello over smpp" and record.fields["channel"] == "sim"


async def test_a_wrong_password_is_refused_with_esme_rinvpaswd(
    server: SmppServer, redis: Redis,
) -> None:
    await add_user(redis, password="right1")
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "transmitter", "acme1", "wrong1") == ESME_RINVPASWD
        assert await in_thread(esme.bind, "transmitter", "nobody", "right1") == ESME_RINVPASWD
    finally:
        await in_thread(esme.close)


async def test_a_bind_over_the_users_max_binds_is_refused(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis, max_binds=1)
    first, second = Esme(server.port).connect(), Esme(server.port).connect()
    try:
        assert await in_thread(first.bind, "transmitter", "acme1", password) == 0
        assert await in_thread(second.bind, "receiver", "acme1", password) == ESME_RBINDFAIL
        await in_thread(first.unbind)
        third = Esme(server.port).connect()
        assert await in_thread(third.bind, "receiver", "acme1", password) == 0
        await in_thread(third.close)
    finally:
        await in_thread(first.close)
        await in_thread(second.close)


async def test_submits_over_the_users_rate_are_throttled(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis, rate=1, burst=1)
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "transmitter", "acme1", password) == 0
        answers = await in_thread(esme.submit_all,
                                  [(f"+2782000000{n}", b"x") for n in range(5)], 5)
    finally:
        await in_thread(esme.close)
    statuses = [s for s, _ in answers]
    assert statuses.count(0) >= 1 and ESME_RTHROTTLED in statuses
    assert set(statuses) <= {0, ESME_RTHROTTLED}


async def test_an_invalid_destination_is_refused_with_esme_rinvdstadr(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis)
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "transmitter", "acme1", password) == 0
        [(status, api_id)] = await in_thread(esme.submit_all, [("12ab", b"x")], 1)
    finally:
        await in_thread(esme.close)
    assert (status, api_id) == (ESME_RINVDSTADR, "")


async def test_a_receiver_bind_cannot_submit(server: SmppServer, redis: Redis) -> None:
    password = await add_user(redis)
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "receiver", "acme1", password) == 0
        # smpplib itself refuses to submit on a receiver bind: the PDU goes out raw.
        body = ShortMessage(destination_addr="27820000001", short_message=b"x").encode()
        await in_thread(esme.send_raw, encode_pdu(SUBMIT_SM, 0, 9, body))
        resp = await in_thread(esme.read)
    finally:
        await in_thread(esme.close)
    assert (resp.command, resp.status, resp.sequence) == ("submit_sm_resp", ESME_RINVBNDSTS, 9)


async def test_an_unknown_command_gets_generic_nack_and_the_session_goes_on(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis)
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "transceiver", "acme1", password) == 0
        await in_thread(esme.send_raw, struct.pack("!IIII", 16, 0x00000099, 0, 77))
        nack = await in_thread(esme.read)
        [(status, _)] = await in_thread(esme.submit_all, [("+27820000001", b"x")], 1)
    finally:
        await in_thread(esme.close)
    assert (nack.command, nack.status, nack.sequence) == ("generic_nack", ESME_RINVCMDID, 77)
    assert status == 0


async def test_a_malformed_pdu_closes_its_session_and_others_go_on(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis)
    bad, good = Esme(server.port).connect(), Esme(server.port).connect()
    try:
        assert await in_thread(bad.bind, "transceiver", "acme1", password) == 0
        assert await in_thread(good.bind, "transceiver", "acme1", password) == 0
        await in_thread(bad.send_raw, struct.pack("!IIII", 8, 0x00000004, 0, 5))
        nack = await in_thread(bad.read)
        closed = await in_thread(bad.read)
        [(status, _)] = await in_thread(good.submit_all, [("+27820000001", b"x")], 1)
    finally:
        await in_thread(bad.close)
        await in_thread(good.close)
    assert (nack.command, nack.status) == ("generic_nack", ESME_RINVCMDLEN)
    assert closed is None
    assert status == 0


async def test_accepted_submits_are_counted_with_door_smpp_on_the_servers_metrics(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis)
    async with running(smpp_settings(redis_url), "127.0.0.1", 0, metrics_port=0) as srv:
        esme = Esme(srv.port).connect()
        try:
            assert await in_thread(esme.bind, "transmitter", "acme1", password) == 0
            answers = await in_thread(esme.submit_all, [("+27820000001", b"a"),
                                                        ("12ab", b"refused")], 2)
        finally:
            await in_thread(esme.close)
        assert sorted(s for s, _ in answers) == [0, ESME_RINVDSTADR]
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{srv.metrics_port}/metrics") as resp:
            text = await resp.text()
    assert 'smsgw_messages_accepted_total{channel="sim",door="smpp"} 1.0' in text
