"""Webhook capture and crash recovery against a real redis-server and a local aiohttp sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from ipaddress import ip_address

import pytest
from redis import exceptions as redis_exceptions
from redis.asyncio import Redis

from gateway.keys_cli import create_key
from tests.integration.test_webhooks import (
    Sink,
    outcomes,
    start_sink,
    subscribed,
    until_all,
)
from worker import webhook_delivery
from worker.config import WebhookSettings
from worker.jobs import job_payload
from worker.lifecycle import Status
from worker.store import (
    WEBHOOK_CONSUMER,
    WEBHOOK_GROUP,
    WEBHOOK_NOTIFY,
    WEBHOOK_SHARDS,
    NewMessage,
    Outcome,
    Store,
    WebhookStore,
    now_ms,
    webhook_lease_key,
    webhook_shard,
    webhook_stream_key,
)
from worker.webhook_delivery import WebhookService
from worker.webhooks import body_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    served, runner = await start_sink(Sink())
    yield served
    await runner.cleanup()


@contextlib.asynccontextmanager
async def _running(redis_url: str, settings: WebhookSettings, owner: str,
                   channels: Sequence[str] = ()) -> AsyncIterator[None]:
    """A webhooks service for the body's duration (cancelled on exit, as SIGTERM does)."""
    client = Redis.from_url(redis_url)
    service = asyncio.create_task(
        WebhookService(client, settings, owner=owner, channels=channels).run())
    try:
        yield
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
        await client.aclose()


async def _accounts(redis: Redis, *names: str) -> Store:
    store = Store(redis, 3600)
    for name in names:
        await create_key(store, name=name, account=name, roles=frozenset({"Client"}),
                         channels=None)
    return store


async def _claimed(store: Store, *accounts: str, cmids: list[str] | None = None) -> list[str]:
    """One message per account, accepted and claimed (queued -> sending)."""
    messages = [NewMessage(api_id=f"01TESTMSG{i:017d}", account=a, channel="sim",
                           to="27820000001", content="hi", encoding="gsm7", segments=1,
                           cmid=cmids[i] if cmids else f"c-{a}")
                for i, a in enumerate(accounts)]
    ids = [m.api_id for m in messages]
    await store.accept(messages, window_seconds=60, job_id="j1",
                       job_payload=job_payload(ids, now_ms()), job_expiry_seconds=60)
    await store.claim(ids, worker="w1", lease_ms=60_000, served=["sim"])
    return ids


async def test_only_public_statuses_of_accounts_with_a_callback_are_captured(
    redis: Redis,
) -> None:
    store = await _accounts(redis, "hooked", "plain")
    await WebhookStore(redis).set_callback("hooked", "http://127.0.0.1:9/x", new_secret="s")
    hooked, plain = await _claimed(store, "hooked", "plain")
    stream = webhook_stream_key("hooked", webhook_shard(hooked))
    assert await redis.xlen(stream) == 0  # queued/sending are internal

    await store.record_outcomes([
        Outcome(api_id=hooked, channel="sim", status=Status.FAILED, error_code="0x0000000b",
                error_text="invalid destination"),
        Outcome(api_id=plain, channel="sim", smsc_ids=["abc"]),
    ], dlr_ttl_seconds=60)

    ((_, fields),) = await redis.xrange(stream)
    got = {k.decode(): v.decode() for k, v in fields.items()}
    assert {k: got[k] for k in ("kind", "id", "status", "cmid", "code", "text")} == {
        "kind": "status", "id": hooked, "status": "failed", "cmid": "c-hooked",
        "code": "0x0000000b", "text": "invalid destination"}
    assert int(got["at"]) > 0
    assert not any([await redis.exists(webhook_stream_key("plain", shard))
                    for shard in [None, *range(WEBHOOK_SHARDS)]])


async def test_events_a_dead_deliverer_left_unacknowledged_go_to_its_successor(
    redis: Redis, redis_url: str, sink: Sink,
) -> None:
    store = await _accounts(redis, "acme")
    hooks = WebhookStore(redis)
    await hooks.set_callback("acme", sink.url, new_secret="s")
    (api_id,) = await _claimed(store, "acme")
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=60)
    # A deliverer read the event, then died holding its shard's lease: the event is pending.
    shard = webhook_shard(api_id)
    await hooks.ensure_group("acme", shard)
    (read,) = await hooks.read_events({("acme", shard): ">"}, count=10, block_ms=None)
    await redis.set(webhook_lease_key("acme", shard), "dead-process", px=300)

    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05,
                               allow_private_networks=True)  # the sink is on 127.0.0.1
    async with asyncio.timeout(20), subscribed(redis, WEBHOOK_NOTIFY) as notices, \
            _running(redis_url, settings, "next"):
        await until_all(notices, {f"acme delivered {api_id}.submitted"})

    (hit,) = sink.hits
    assert hit.json["apiMessageId"] == api_id and hit.answered == 200
    assert read.fields is not None and read.fields["id"] == api_id
    stream = webhook_stream_key("acme", shard)
    assert await redis.xlen(stream) == 0
    assert (await redis.xpending(stream, WEBHOOK_GROUP))["pending"] == 0
    assert not await redis.keys(webhook_lease_key("acme", None) + "*")  # handed over: clean stop


async def test_events_in_the_stream_of_before_shards_are_still_delivered(
    redis: Redis, redis_url: str, sink: Sink,
) -> None:
    store = await _accounts(redis, "acme")
    hooks = WebhookStore(redis)
    await hooks.set_callback("acme", sink.url, new_secret="s")
    # Written before the upgrade to one stream per account: one event read by the deliverer
    # of then and left unacknowledged, one not read yet.
    old = webhook_stream_key("acme", None)
    await redis.xgroup_create(old, WEBHOOK_GROUP, id="0", mkstream=True)
    for n in range(2):
        await redis.xadd(old, {"kind": "status", "id": f"old{n}", "status": "delivered",
                               "channel": "sim", "to": "27820000001", "at": str(now_ms())})
    await redis.xreadgroup(WEBHOOK_GROUP, WEBHOOK_CONSUMER, {old: ">"}, count=1)
    (api_id,) = await _claimed(store, "acme")  # and one written since, to its shard
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=60)

    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05,
                               allow_private_networks=True)
    wanted = {"old0.delivered", "old1.delivered", f"{api_id}.submitted"}
    async with asyncio.timeout(20), subscribed(redis, WEBHOOK_NOTIFY) as notices, \
            _running(redis_url, settings, "w"):
        await until_all(notices, {f"acme delivered {e}" for e in wanted})
    assert sorted(h.json["eventId"] for h in sink.hits) == sorted(wanted)
    assert await redis.xlen(old) == 0


async def test_a_webhook_without_a_url_any_more_is_dead_lettered_with_the_reason(
    redis: Redis, redis_url: str,
) -> None:
    store = await _accounts(redis, "acme")
    hooks = WebhookStore(redis)
    await hooks.set_callback("acme", "http://127.0.0.1:9/x", new_secret="s")
    (api_id,) = await _claimed(store, "acme")
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=60)
    await hooks.set_callback("acme", "", new_secret="unused")

    settings = WebhookSettings(timeout_seconds=1, max_age_seconds=1, lease_seconds=2,
                               backoff_min_seconds=0.2, backoff_max_seconds=0.4)
    async with asyncio.timeout(20), subscribed(redis, WEBHOOK_NOTIFY) as notices, \
            _running(redis_url, settings, "w"):
        await until_all(notices, {f"acme dead {api_id}.submitted"})
    (dead,) = await hooks.dead_letters("acme", 10)
    assert dead.fields["reason"] == "no URL configured" and dead.fields["id"] == api_id



# The address as this Python spells it (3.13 writes IPv4-mapped addresses dotted).
@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("[::ffff:127.0.0.1]", str(ip_address("::ffff:127.0.0.1")))])
async def test_a_stored_url_at_a_loopback_literal_is_dead_lettered_without_a_connection(
    redis: Redis, redis_url: str, sink: Sink, host: str, address: str,
) -> None:
    # Stored directly, as a URL set while private networks were allowed would be: aiohttp
    # connects to IP literals without a lookup, so the deliverer checks them itself.
    store = await _accounts(redis, "acme")
    hooks = WebhookStore(redis)
    url = sink.url.replace("127.0.0.1", host)
    await hooks.set_callback("acme", url, new_secret="s")
    (api_id,) = await _claimed(store, "acme")
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=60)

    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05)
    event = f"{api_id}.submitted"
    async with asyncio.timeout(20), subscribed(redis, WEBHOOK_NOTIFY) as notices, \
            _running(redis_url, settings, "w"):
        assert await outcomes(notices, "acme", {event}) == {event: "dead"}
    assert sink.hits == []
    (dead,) = await hooks.dead_letters("acme", 10)
    assert dead.fields["attempts"] == "1"
    assert dead.fields["reason"] == f"target address {address} is not public"


async def test_a_webhook_lane_that_crashed_is_restarted_and_delivers_the_event(
    redis: Redis, redis_url: str, sink: Sink, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = await _accounts(redis, "acme")
    await WebhookStore(redis).set_callback("acme", sink.url, new_secret="s")
    (api_id,) = await _claimed(store, "acme")
    crashes: list[str] = []

    def body_of_crashing_once(fields: Mapping[str, str]) -> bytes:
        if not crashes:
            crashes.append(fields["id"])
            raise RuntimeError("a bug met while delivering")
        return body_of(fields)

    monkeypatch.setattr(webhook_delivery, "body_of", body_of_crashing_once)
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=60)
    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05,
                               allow_private_networks=True)  # the sink is on 127.0.0.1
    async with asyncio.timeout(10), subscribed(redis, WEBHOOK_NOTIFY) as notices, \
            _running(redis_url, settings, "w"):
        await until_all(notices, {f"acme delivered {api_id}.submitted"})
    assert crashes == [api_id]  # the same event, delivered by the restarted lane
    assert [h.json["apiMessageId"] for h in sink.hits] == [api_id]
    assert any(r.levelno == logging.ERROR and r.exc_info is not None for r in caplog.records)


async def test_an_error_reply_while_renewing_leases_does_not_stop_delivery(
    redis: Redis, redis_url: str, sink: Sink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = await _accounts(redis, "acme")
    await WebhookStore(redis).set_callback("acme", sink.url, new_secret="s")
    (api_id,) = await _claimed(store, "acme")
    hooked_accounts = WebhookStore.hooked_accounts
    refused: list[int] = []

    async def refused_once(self: WebhookStore) -> list[str]:
        if not refused:
            refused.append(1)
            raise redis_exceptions.ResponseError("READONLY You can't write against a replica.")
        return await hooked_accounts(self)

    monkeypatch.setattr(WebhookStore, "hooked_accounts", refused_once)
    await store.record_outcomes([Outcome(api_id=api_id, channel="sim", smsc_ids=["abc"])],
                                dlr_ttl_seconds=60)
    settings = WebhookSettings(timeout_seconds=1, lease_seconds=2, backoff_min_seconds=0.05,
                               allow_private_networks=True)
    async with asyncio.timeout(10), subscribed(redis, WEBHOOK_NOTIFY) as notices, \
            _running(redis_url, settings, "w"):
        await until_all(notices, {f"acme delivered {api_id}.submitted"})
    assert refused == [1]
