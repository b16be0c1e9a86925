"""The shards' copies of accounts' callback settings (worker/store/copies.py): every change
reaches the transitions, an old copy never wins, and a lost copy is made again."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.webhook_config import Choices, set_callback
from tests.integration.test_webhooks import subscribed, waiting
from tests.integration.test_webhooks_recovery import _accounts, _running
from worker.config import WebhookSettings
from worker.ids import new_id
from worker.store import (
    CallbackSettings,
    Copies,
    NewMessage,
    Store,
    WebhookStore,
    account_key,
    callback_copy_key,
    now_ms,
    scripts,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]

URL = "https://hooks.example/acme"


async def _failed(store: Store) -> str:
    """A message of acme's that fails now (it expires in its queue): its id."""
    msg = NewMessage(api_id=new_id(), account="acme", channel="sim", to="27820000001",
                     content="hi", encoding="gsm7", segments=1)
    await store.accept([msg], window_seconds=60, job_id=new_id(), job_payload=b"job",
                       job_expiry_seconds=60, accepted_at=now_ms() - 120_000)
    swept = await store.expire_queued("sim", max_age_ms=60_000, text="old", start=0, limit=10)
    assert swept.failed == [msg.api_id]
    return msg.api_id


async def _heard(redis: Redis) -> list[str]:
    """The ids of acme's waiting events (failures, here), sorted (they are in several
    streams)."""
    return sorted(f[b"id"].decode() for f in await waiting(redis, "acme"))


async def test_a_callback_set_changed_and_cleared_reaches_the_transitions(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "acme")
    hooks = WebhookStore(redis)
    silent = await _failed(store)  # no callback yet
    await set_callback(hooks, "acme", URL)
    every = await _failed(store)
    await set_callback(hooks, "acme", URL, choices=Choices(events=frozenset({"delivered"})))
    unchosen = await _failed(store)
    await set_callback(hooks, "acme", URL, choices=Choices(events=frozenset({"failed"})))
    chosen = await _failed(store)
    await set_callback(hooks, "acme", URL, choices=Choices(all_events=True))
    all_again = await _failed(store)
    await set_callback(hooks, "acme", "")
    cleared = await _failed(store)
    assert await _heard(redis) == sorted([every, chosen, all_again])
    assert {silent, unchosen, cleared}.isdisjoint(await _heard(redis))


async def test_an_older_copy_arriving_after_a_newer_one_does_not_win(redis: Redis) -> None:
    # Two changes at once: the later one's copy lands first, the earlier one's after it.
    store = await _accounts(redis, "acme")
    options = scripts.register(redis, "set_callback_options")
    await redis.hset(account_key("acme"), "cb_url", URL)
    earlier = CallbackSettings.from_reply(await options(keys=[account_key("acme")],
                                                        args=["*", "", ""]))
    later = CallbackSettings.from_reply(await options(keys=[account_key("acme")],
                                                      args=[",delivered,", "", ""]))
    copies = Copies(redis)
    assert await copies.copy_callbacks({"acme": later}) == 1
    assert await copies.copy_callbacks({"acme": earlier}) == 0
    await _failed(store)
    assert await _heard(redis) == []  # as the later change chose: delivered only


async def test_a_reconcile_makes_a_lost_copy_again_and_changes_nothing_current(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "acme")
    await set_callback(WebhookStore(redis), "acme", URL)
    await redis.delete(callback_copy_key("acme"))  # lost (a crash before it was written)
    lost = await _failed(store)
    copies = Copies(redis)
    assert await copies.reconcile_callbacks() == 1
    assert await copies.reconcile_callbacks() == 0  # current: nothing to write
    found = await _failed(store)
    assert await _heard(redis) == [found] and lost != found


async def test_the_webhooks_process_makes_lost_copies_again_at_start_and_then_periodically(
    redis: Redis, redis_url: str,
) -> None:
    store = await _accounts(redis, "acme")
    await set_callback(WebhookStore(redis), "acme", URL)
    await redis.delete(callback_copy_key("acme"))
    await redis.config_set("notify-keyspace-events", "Kgh")
    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05,
                               reconcile_seconds=0.2)
    try:
        async with asyncio.timeout(20), subscribed(
                redis, f"__keyspace@0__:{callback_copy_key('acme')}") as notices, \
                _running(redis_url, settings, "starting"):
            assert await anext(notices) == "hset"
            await redis.delete(callback_copy_key("acme"))  # lost again: made again, later
            assert await anext(notices) == "del"
            assert await anext(notices) == "hset"
    finally:
        await redis.config_set("notify-keyspace-events", "")
    found = await _failed(store)
    assert await _heard(redis) == [found]
