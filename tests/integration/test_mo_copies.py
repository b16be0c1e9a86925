"""The shards' copies of what the MO script reads (worker/store/copies.py): a number's owner,
its inbound URL and its SMPP users, through every change, and made again when lost."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.integration.test_smpp_server import add_user
from tests.integration.test_webhooks import subscribed, waiting
from tests.integration.test_webhooks_recovery import _accounts, _running
from worker.config import WebhookSettings
from worker.ids import new_id
from worker.store import (
    Copies,
    MoPart,
    Store,
    WebhookStore,
    copy_of,
    numbers_key,
)
from worker.store.keys import receipts_key
from worker.store.smpp_server import SmppServerStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]


async def _owner(store: Store, to: str = "+4412") -> str:
    """Who an MO message to ``to`` on channel sim goes to now ('fallback': nobody's)."""
    mo_id = await store.record_mo(MoPart(api_id=new_id(), channel="sim", source="27820000001",
                                         destination=to, body=b"hi",
                                         default_account="fallback"))
    (newest,) = await store.mo_messages("sim", 1)
    assert newest["id"] == mo_id
    return newest["account"]


async def test_a_number_assigned_reassigned_and_unassigned_reaches_the_mo_script(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "acme", "beta")
    assert await _owner(store) == "fallback"
    assert await store.assign_number("sim", "4412", "acme")
    assert await _owner(store) == "acme"
    assert await store.assign_number("sim", "4412", "beta")
    assert await _owner(store) == "beta"
    assert await store.unassign_number("sim", "4412")
    assert await _owner(store) == "fallback"


async def test_an_inbound_url_and_smpp_users_set_and_cleared_reach_the_mo_script(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "acme")
    hooks, users = WebhookStore(redis), SmppServerStore(redis)
    await store.assign_number("sim", "4412", "acme")
    await hooks.set_inbound("acme", "sim", "https://in.example", new_secret="s")
    await add_user(redis, "acme1")
    await _owner(store)
    await hooks.set_inbound("acme", "sim", "", new_secret="s")
    assert await users.change_user("acme1", "delete")
    await _owner(store)
    assert len(await waiting(redis, "acme")) == 1  # the first one only, both ways
    assert await redis.xlen(receipts_key("acme")) == 1


async def test_a_reconcile_makes_lost_mo_copies_again_and_marks_what_went_absent(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "acme")
    await store.assign_number("sim", "4412", "acme")
    await store.assign_number("sim", "4413", "acme")
    await redis.delete(copy_of(numbers_key("sim")))  # lost (a crash before it was written)
    assert await _owner(store) == "fallback"
    await redis.hdel(numbers_key("sim"), "4413")  # gone from the source, by hand
    await redis.hset(copy_of(numbers_key("sim")), "4413", "0|acme")  # an old copy of it
    copies = Copies(redis)
    assert await copies.reconcile_mo(["sim"]) == 2
    assert await copies.reconcile_mo(["sim"]) == 0  # current: nothing to write
    assert await _owner(store) == "acme"
    assert await _owner(store, "+4413") == "fallback"


async def test_the_webhooks_process_makes_lost_mo_copies_of_its_channels_when_it_starts(
    redis: Redis, redis_url: str,
) -> None:
    store = await _accounts(redis, "acme")
    await store.assign_number("sim", "4412", "acme")
    await redis.delete(copy_of(numbers_key("sim")))
    await redis.config_set("notify-keyspace-events", "Kh")
    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05)
    try:
        async with asyncio.timeout(20), subscribed(
                redis, f"__keyspace@0__:{copy_of(numbers_key('sim'))}") as notices, \
                _running(redis_url, settings, "starting", channels=["sim"]):
            assert await anext(notices) == "hset"
    finally:
        await redis.config_set("notify-keyspace-events", "")
    assert await _owner(store) == "acme"
