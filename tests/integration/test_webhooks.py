"""Signed delivery webhooks over real parts: redis-server, the SMSC simulator over TCP, an arq
worker, the gateway on a real port, the webhooks service and a local aiohttp sink.

Waits are on the sink's own records (a condition), on Redis pub/sub or on the simulator, inside
``asyncio.timeout``: never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from arq.worker import Worker
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from tests.integration.support import stop_in_process_worker
from worker.config import Settings, WebhookSettings, settings_from_dict
from worker.jobs import arq_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator
from worker.store import (
    EVENTS,
    WEBHOOK_GROUP,
    WEBHOOK_NOTIFY,
    WEBHOOK_SHARDS,
    Store,
    dead_letter_key,
    webhook_stream_key,
)
from worker.webhook_delivery import WebhookService

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_slot_per_script_run")]

SEND = "/communication/message/smpp/sms"
README = Path(__file__).resolve().parents[2] / "README.md"
# The sinks listen on 127.0.0.1, which production settings refuse as a webhook target.
FAST_RETRIES = WebhookSettings(timeout_seconds=5, backoff_min_seconds=0.05,
                               backoff_max_seconds=0.2, lease_seconds=10,
                               allow_private_networks=True)


# --- a local HTTP sink ----------------------------------------------------------------------------


@dataclass
class Hit:
    """One request the sink received, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int = 0

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Sink:
    """An aiohttp server on 127.0.0.1 that records every request. It answers from ``script``
    first (one status per request), then ``judge(hit, number)`` if given (requests counted
    from 1), else ``default``; while ``gate`` is clear it holds every request unanswered."""

    script: list[int] = field(default_factory=list)
    default: int = 200
    judge: Callable[[Hit, int], int] | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    hits: list[Hit] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle(self, request: web.Request) -> web.Response:
        hit = Hit(request.path, dict(request.headers), await request.read())
        await self._note(lambda: self.hits.append(hit))
        number = len(self.hits)
        await self.gate.wait()
        status = (self.script.pop(0) if self.script
                  else self.judge(hit, number) if self.judge else self.default)
        hit.answered = status
        await self._note(lambda: None)
        return web.Response(status=status)

    async def _note(self, change: Any) -> None:
        async with self._changed:
            change()
            self._changed.notify_all()

    async def wait_for(self, count: int, *, answered: int | None = None) -> list[Hit]:
        """Once ``count`` requests arrived (and, if given, that many got ``answered``)."""
        def done() -> bool:
            got = self.hits if answered is None else [h for h in self.hits
                                                      if h.answered == answered]
            return len(got) >= count

        async with self._changed:
            await self._changed.wait_for(done)
        return list(self.hits)


async def start_sink(sink: Sink) -> tuple[Sink, web.AppRunner]:
    """Serve ``sink`` on a free port of 127.0.0.1."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", sink.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    return sink, runner


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The ``verify`` function the README's Webhooks section shows receivers, executed as is."""
    section = README.read_text().split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return cast(Callable[[str, str, bytes], bool], namespace["verify"])


def verify(secret: str, hit: Hit) -> bool:
    """The receiver's check, written from the README rather than from our signer."""
    fields = dict(part.split("=", 1) for part in hit.headers["X-Smsgw-Signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + hit.body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


# --- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    base: str
    admin: str
    redis: Redis
    sim: Simulator
    settings: Settings
    runners: list[web.AppRunner]
    keys: dict[str, str] = field(default_factory=dict)

    async def sink(self, **kwargs: Any) -> Sink:
        sink, runner = await start_sink(Sink(**kwargs))
        self.runners.append(runner)
        return sink

    async def call(self, method: str, path: str, key: str, body: Any = None
                   ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        async with aiohttp.ClientSession() as http, http.request(
                method, self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def set_callback(self, account: str, url: str) -> str:
        status, reply = await self.call("PUT", f"/admin/accounts/{account}/callback",
                                        self.admin, {"url": url})
        assert status == 200, reply
        return str(reply["secret"])

    async def send(self, account: str, count: int, prefix: str = "m") -> list[str]:
        body = {"Messages": [{"channel": "sim", "to": f"2782000{i:04d}", "content": "hi",
                              "clientMessageId": f"{prefix}-{i}"} for i in range(count)]}
        status, reply = await self.call("POST", SEND, self.keys[account], body)
        assert status == 200, reply
        return [m["apiMessageId"] for m in reply["messages"]]


def _settings(redis_url: str, sim_port: int, hooks: WebhookSettings) -> Settings:
    settings = settings_from_dict(
        {"gateway": {"default_channel": "sim"},
         "channels": {"sim": {"port": sim_port, "system_id": "smsgw", "password": "secret",
                              "window": 50}}},
        {"REDIS_URL": redis_url}, source="test")
    return Settings(redis_url=settings.redis_url, gateway=settings.gateway,
                    channels=settings.channels, webhooks=hooks, source="test")


@pytest.fixture
def hooks() -> WebhookSettings:
    """The webhooks service's settings (a test overrides this fixture to change them)."""
    return FAST_RETRIES


@pytest.fixture
async def stack(redis_url: str, redis: Redis, hooks: WebhookSettings) -> AsyncIterator[Stack]:
    sim = Simulator(SimulatorConfig(accounts={"smsgw": "secret"}))
    await sim.start()
    settings = _settings(redis_url, sim.port, hooks)
    worker = Worker(**arq_settings(settings), handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    service_redis = Redis.from_url(redis_url)
    service = asyncio.create_task(
        WebhookService(service_redis, hooks, owner="test-hooks").run())
    app = web.AppRunner(create_app(settings))
    await app.setup()
    await web.TCPSite(app, "127.0.0.1", 0).start()
    store = Store(redis, 3600)
    admin = await create_key(store, name="ops", account="ops", roles=frozenset({"Admin"}),
                             channels=None)
    s = Stack(f"http://127.0.0.1:{app.addresses[0][1]}", admin, redis, sim, settings, [app])
    for account in ("acme", "beta", "slow", "fast"):
        s.keys[account] = await create_key(store, name=account, account=account,
                                           roles=frozenset({"Client"}), channels=None)
    try:
        yield s
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
        await service_redis.aclose()
        for runner in reversed(s.runners):
            await runner.cleanup()
        await stop_in_process_worker(worker, worker_task)
        await sim.stop()


@contextlib.asynccontextmanager
async def subscribed(redis: Redis, channel: str) -> AsyncIterator[AsyncIterator[str]]:
    """Messages of a pub/sub channel, subscribed (and confirmed) before the body runs."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        while (await pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
            pass

        async def messages() -> AsyncIterator[str]:
            async for msg in pubsub.listen():
                if msg["type"] == "message":
                    for line in msg["data"].decode().split("\n"):
                        yield line

        yield messages()


async def streams(redis: Redis, account: str) -> list[str]:
    """Every event stream of an account that exists: its shards, and the one of before."""
    names = [webhook_stream_key(account, s) for s in [None, *range(WEBHOOK_SHARDS)]]
    return [n for n in names if await redis.exists(n)]


async def waiting(redis: Redis, account: str) -> list[dict[bytes, bytes]]:
    """The fields of every event waiting in an account's streams."""
    return [f for name in await streams(redis, account) for _, f in await redis.xrange(name)]


async def pending(redis: Redis, account: str) -> int:
    """How many of an account's events were read and are not acknowledged yet."""
    return sum([(await redis.xpending(n, WEBHOOK_GROUP))["pending"]
                for n in await streams(redis, account)])


async def until_all(messages: AsyncIterator[str], wanted: set[str]) -> None:
    """Consume ``messages`` until every one of ``wanted`` was seen."""
    missing = set(wanted)
    async for text in messages:
        missing.discard(text)
        if not missing:
            return


# --- tests ----------------------------------------------------------------------------------------


async def test_a_webhook_reaches_the_sink_signed_and_is_retried_after_a_500(stack: Stack) -> None:
    sink = await stack.sink(script=[500])
    secret = await stack.set_callback("acme", sink.url)
    async with asyncio.timeout(30), subscribed(stack.redis, WEBHOOK_NOTIFY) as notices:
        (api_id,) = await stack.send("acme", 1, prefix="sig")
        await until_all(notices, {f"acme delivered {api_id}.{s}" for s in ("submitted",
                                                                          "delivered")})
        hits = await sink.wait_for(2, answered=200)

    first, retry, delivered = hits[:3]
    assert [h.answered for h in hits[:3]] == [500, 200, 200]
    assert all(verify(secret, h) for h in hits)
    readme = readme_verify()
    assert all(readme(secret, h.headers["X-Smsgw-Signature"], h.body) for h in hits)
    assert not readme(secret, first.headers["X-Smsgw-Signature"], first.body + b" ")
    assert not verify("whsec_wrong", first)
    assert first.body == retry.body  # the same event, signed afresh
    assert first.headers["X-Smsgw-Event-Id"] == retry.headers["X-Smsgw-Event-Id"]
    event = retry.json
    assert event["type"] == "message.status" and event["status"] == "submitted"
    assert event["apiMessageId"] == api_id and event["clientMessageId"] == "sig-0"
    assert event["eventId"] == f"{api_id}.submitted" and event["timestamp"]
    final = delivered.json
    assert final["status"] == "delivered" and final["receipt"]["stat"] == "DELIVRD"
    # Delivered events are acknowledged and deleted: nothing waits, nothing is pending.
    assert await waiting(stack.redis, "acme") == []
    assert await pending(stack.redis, "acme") == 0


async def test_accounts_without_a_callback_get_no_events(stack: Stack) -> None:
    sink = await stack.sink()
    await stack.set_callback("acme", sink.url)
    async with asyncio.timeout(30), subscribed(stack.redis, EVENTS) as events:
        plain = await stack.send("beta", 1)
        hooked = await stack.send("acme", 1)
        await until_all(events, {f"{plain[0]} delivered", f"{hooked[0]} delivered"})
        await sink.wait_for(2, answered=200)
    assert await streams(stack.redis, "beta") == []
    assert {h.json["apiMessageId"] for h in sink.hits} == set(hooked)


@pytest.mark.parametrize("hooks", [WebhookSettings(
    timeout_seconds=2, max_age_seconds=1, backoff_min_seconds=0.1, backoff_max_seconds=0.2,
    lease_seconds=10, allow_private_networks=True)])
async def test_the_dead_letter_appears_and_replays(stack: Stack) -> None:
    sink = await stack.sink(default=503)
    await stack.set_callback("acme", sink.url)
    async with asyncio.timeout(30), subscribed(stack.redis, WEBHOOK_NOTIFY) as notices:
        (api_id,) = await stack.send("acme", 1)
        dead_ids = [f"{api_id}.submitted", f"{api_id}.delivered"]
        await until_all(notices, {f"acme dead {e}" for e in dead_ids})

    status, listed = await stack.call("GET", "/admin/webhooks/dead?account=acme", stack.admin)
    assert status == 200
    rows = listed["results"]
    assert {r["eventId"] for r in rows} == set(dead_ids)
    assert all(r["reason"] == "HTTP 503" and r["attempts"] >= 1 and r["deadAt"] for r in rows)
    assert await waiting(stack.redis, "acme") == []

    status, _ = await stack.call("GET", "/admin/webhooks/dead?account=acme", stack.keys["acme"])
    assert status == 403  # a Client key manages nothing

    tried = len(sink.hits)
    sink.default = 200
    async with asyncio.timeout(30):
        status, replayed = await stack.call("POST", "/admin/webhooks/dead/replay", stack.admin,
                                            {"account": "acme"})
        assert (status, replayed["replayed"]) == (200, 2)
        hits = await sink.wait_for(2, answered=200)
    again = [h.json for h in hits[tried:] if h.answered == 200]
    assert [e["eventId"] for e in again] == [f"{api_id}.submitted", f"{api_id}.delivered"]
    assert await stack.redis.xlen(dead_letter_key("acme")) == 0


@pytest.mark.parametrize("hooks", [WebhookSettings(
    timeout_seconds=60, backoff_min_seconds=1, lease_seconds=90, concurrency_per_account=4,
    allow_private_networks=True)])
async def test_a_slow_sink_does_not_delay_submits(stack: Stack) -> None:
    slow = await stack.sink()
    slow.gate.clear()  # holds every request until the end of the test
    fast = await stack.sink()
    await stack.set_callback("slow", slow.url)
    await stack.set_callback("fast", fast.url)
    async with asyncio.timeout(60), subscribed(stack.redis, EVENTS) as events:
        slow_ids = await stack.send("slow", 40, prefix="slow")
        await slow.wait_for(4)  # every lane of the slow account is now stuck in a POST
        fast_ids = await stack.send("fast", 1, prefix="fast")
        await fast.wait_for(2, answered=200)  # another account's webhooks still flow
        await stack.sim.wait_for_submits(41)
        await until_all(events, {f"{i} delivered" for i in [*slow_ids, *fast_ids]})
    # Every submit of the slow account reached the SMSC, and every message was settled,
    # while its receiver had not answered a single webhook.
    assert not [h for h in slow.hits if h.answered]
    assert sorted(r.destination for r in stack.sim.submits) == sorted(
        [f"2782000{i:04d}" for i in range(40)] + ["27820000000"])
    assert {h.json["apiMessageId"] for h in fast.hits} == set(fast_ids)
    read = await pending(stack.redis, "slow")
    assert 4 <= read <= WebhookSettings().queue_per_account  # read ahead, not acked
    slow.gate.set()



async def outcomes(messages: AsyncIterator[str], account: str, event_ids: set[str]
                   ) -> dict[str, str]:
    """Consume webhook notices until each of ``event_ids`` was delivered or dead-lettered."""
    seen: dict[str, str] = {}
    async for text in messages:
        got_account, outcome, event = text.split(" ", 2)
        if got_account == account and event in event_ids and outcome in ("delivered", "dead"):
            seen[event] = outcome
            if seen.keys() == event_ids:
                break
    return seen


@pytest.mark.parametrize("hooks", [WebhookSettings(  # production's guard, 24 h max age
    timeout_seconds=5, backoff_min_seconds=0.05, backoff_max_seconds=0.2, lease_seconds=10)])
async def test_a_callback_name_that_resolves_to_loopback_gets_nothing_and_is_dead_lettered(
    stack: Stack,
) -> None:
    sink = await stack.sink()
    local = sink.url.replace("127.0.0.1", "localhost")
    await stack.set_callback("acme", local)  # a name: accepted, it is checked at delivery
    async with asyncio.timeout(30), subscribed(stack.redis, WEBHOOK_NOTIFY) as notices:
        (api_id,) = await stack.send("acme", 1)
        events = {f"{api_id}.submitted", f"{api_id}.delivered"}
        assert await outcomes(notices, "acme", events) == dict.fromkeys(events, "dead")

    assert sink.hits == []
    status, listed = await stack.call("GET", "/admin/webhooks/dead?account=acme", stack.admin)
    assert status == 200 and {r["eventId"] for r in listed["results"]} == events
    for row in listed["results"]:
        assert row["attempts"] == 1  # a refused target is not retried for its 24 h
        assert "127.0.0.1" in row["reason"] and row["reason"].endswith(" not public")
        assert row["reason"].startswith("target address")
