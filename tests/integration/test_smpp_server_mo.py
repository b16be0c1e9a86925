"""MO messages owned by an account with SMPP users reach its receiver binds as plain deliver_sm
(esm_class 0), queued in Redis while it has none; real redis-server, smpplib over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.smpp_server.server import SmppServer, running
from tests.esme import Esme
from tests.integration.test_smpp_server import add_user, in_thread, smpp_settings
from worker.store import Copies, MoPart, Store, numbers_key
from worker.store.keys import receipts_key, smpp_accounts_key
from worker.store.smpp_server import SmppServerStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def server(redis_url: str) -> AsyncIterator[SmppServer]:
    async with running(smpp_settings(redis_url), "127.0.0.1", 0) as srv:
        yield srv


async def mo(redis: Redis, mo_id: str, text: str, to: str = "27830000001") -> None:
    body, coding = (text.encode(), 0) if text.isascii() else (text.encode("utf-16-be"), 8)
    assert await Store(redis, 3600).record_mo(MoPart(
        api_id=mo_id, channel="sim", source="27820000009", destination=to, body=body,
        data_coding=coding)) == mo_id


async def assigned(redis: Redis, numbers: dict[str, str]) -> None:
    """Numbers of channel sim assigned, and copied to the shards as a process start does."""
    await redis.hset(numbers_key("sim"), mapping=numbers)
    await Copies(redis).reconcile_mo(["sim"])


async def test_an_mo_message_queued_before_the_bind_reaches_the_receiver_as_a_deliver_sm(
    server: SmppServer, redis: Redis,
) -> None:
    password = await add_user(redis)
    await assigned(redis, {"27830000001": "acme"})
    await mo(redis, "mo1", "reply STOP")
    await mo(redis, "mo2", "grüße €")
    esme = Esme(server.port).connect()
    try:
        assert await in_thread(esme.bind, "receiver", "acme1", password) == 0
        got = await in_thread(esme.read_receipts, 2)
    finally:
        await in_thread(esme.close)
    assert [(r.esm_class, r.source, r.destination) for r in got] == [
        (0, "27820000009", "27830000001")] * 2
    assert got[0].octets == b"reply STOP" and got[0].data_coding == 0
    assert got[1].data_coding == 8 and got[1].octets.decode("utf-16-be") == "grüße €"


async def test_mo_messages_of_accounts_without_smpp_users_are_not_queued_for_smpp(
    redis: Redis,
) -> None:
    await add_user(redis)  # of account acme
    await assigned(redis, {"27830000002": "other", "27830000001": "acme"})
    await mo(redis, "mo3", "hi", to="27830000002")
    await mo(redis, "mo4", "hi", to="27830000001")
    assert await redis.exists(receipts_key("other")) == 0
    assert await redis.xlen(receipts_key("acme")) == 1  # where the one of acme went


async def test_an_account_wants_mo_over_smpp_while_it_has_an_smpp_user(redis: Redis) -> None:
    users = SmppServerStore(redis)
    await add_user(redis, "acme1")
    await add_user(redis, "acme2")
    assert await users.change_user("acme1", "delete")
    assert await redis.sismember(smpp_accounts_key(), "acme")
    assert await users.change_user("acme2", "delete")
    assert not await redis.sismember(smpp_accounts_key(), "acme")
