"""Routing at accept time, over real HTTP and a real redis-server: a message that names no
channel is routed; the record shows the route and its failover chain; a recipient no route can
send is answered accepted:false with the reason; a key's channels bound what routing picks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from tests.integration.support import message_status as _status
from tests.integration.support import send_messages as _send
from tests.integration.support import serving_gateway
from worker.config import settings_from_dict
from worker.store import Store

pytestmark = pytest.mark.integration

PATH = "/communication/message/smpp/sms"
CONFIG: dict[str, Any] = {
    "gateway": {"default_country_code": "27"},
    "channels": {"a": {}, "b": {}, "c": {}},
    "routes": [
        {"name": "vip", "accounts": ["vip"], "channels": ["c"]},
        {"name": "za", "prefixes": ["27"], "channels": {"a": 1}, "fallbacks": ["b"]},
        {"name": "fr", "countries": ["FR"], "channels": ["b"], "number_check": "libphonenumber"},
    ],
}

Client = Callable[..., AsyncIterator[aiohttp.ClientSession]]


@pytest.fixture
async def gateway(redis_url: str) -> AsyncIterator[str]:
    settings = settings_from_dict(CONFIG, {"REDIS_URL": redis_url}, source="test.toml")
    async with serving_gateway(settings) as base:
        yield base


async def _key(redis: Redis, account: str, channels: frozenset[str] | None = None,
               parent: str = "") -> str:
    return await create_key(Store(redis, 3600), name="t", account=account,
                            roles=frozenset({"Client"}), channels=channels,
                            parent_account=parent)


async def test_a_message_naming_no_channel_goes_where_its_route_sends(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme")
    (za, fr) = await _send(gateway, key, {"to": "0821234567", "content": "hi"},
                           {"to": "+33612345678", "content": "salut"})
    assert (za["accepted"], za["msg"]["channel"], fr["msg"]["channel"]) == (True, "a", "b")
    (record,) = await Store(redis, 3600).get([za["apiMessageId"]])
    assert record is not None
    assert (record.fields["channel"], record.fields["route"], record.fields["chain"]) == \
        ("a", "za", "a,b")


async def test_the_status_of_a_routed_message_shows_its_route_chain_and_channel(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme")
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi"})
    status = await _status(gateway, key, got["apiMessageId"])
    assert (status["route"], status["chain"], status["channel"]) == ("za", ["a", "b"], "a")


async def test_the_status_of_a_message_that_named_its_channel_has_no_route(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme")
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi", "channel": "c"})
    status = await _status(gateway, key, got["apiMessageId"])
    assert status["channel"] == "c" and "route" not in status and "chain" not in status


async def test_a_message_naming_a_channel_still_goes_there(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "acme")
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi", "channel": "c"})
    (record,) = await Store(redis, 3600).get([got["apiMessageId"]])
    assert record is not None and (record.fields["channel"], record.fields["route"]) == ("c", "")


async def test_a_message_naming_a_route_is_routed_by_that_route_alone(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "vip")  # first match: route 'vip' (channel c)
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi",
                                        "channel": "route:za"})
    assert (got["accepted"], got["msg"]["channel"]) == (True, "a")
    (record,) = await Store(redis, 3600).get([got["apiMessageId"]])
    assert record is not None
    assert (record.fields["route"], record.fields["chain"]) == ("za", "a,b")


async def test_a_named_route_that_does_not_match_the_recipient_refuses_it(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme")
    (za, fr) = await _send(gateway, key, {"to": "0821234567,+33612345678", "content": "hi",
                                          "channel": "route:fr"})
    assert za["accepted"] is False
    assert za["error"] == "route 'fr' does not send to +27821234567 for account 'acme'"
    assert (fr["accepted"], fr["msg"]["channel"]) == (True, "b")


async def test_a_message_naming_an_unknown_route_is_refused(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "acme")
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi",
                                        "channel": "route:nope"})
    assert (got["accepted"], got["error"]) == (False, "route 'nope' does not exist")


async def test_a_retry_naming_another_route_is_a_conflict(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "acme")
    msg = {"to": "0821234567", "content": "hi", "clientMessageId": "r-2", "channel": "route:za"}
    (first,) = await _send(gateway, key, msg)
    (again,) = await _send(gateway, key, msg)
    (other,) = await _send(gateway, key, {**msg, "channel": ""})
    assert again["apiMessageId"] == first["apiMessageId"]
    assert other["accepted"] is False and "clientMessageId was already used" in other["error"]


async def test_a_recipient_no_route_sends_is_refused_with_the_reason_and_others_go(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme")
    (us, za) = await _send(gateway, key, {"to": "+12025550123,0821234567", "content": "hi"})
    assert us["accepted"] is False and us["to"] == "12025550123"
    assert us["error"] == "no route sends to +12025550123 for account 'acme'"
    assert za["accepted"] is True and za["msg"]["channel"] == "a"


async def test_a_route_asking_for_libphonenumber_refuses_an_invalid_number(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme")
    (got,) = await _send(gateway, key, {"to": "+3361234567", "content": "hi"})
    assert got["accepted"] is False
    assert "'+3361234567' is not a valid number for FR" in got["error"]


async def test_a_route_matches_a_child_account_by_its_parent(gateway: str, redis: Redis) -> None:
    await _key(redis, "vip")  # the parent account exists
    key = await _key(redis, "vip-shop", parent="vip")
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi"})
    assert got["msg"]["channel"] == "c"


async def test_a_key_restricted_to_a_fallback_is_routed_to_it(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "acme", channels=frozenset({"b"}))
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi"})
    assert got["accepted"] is True and got["msg"]["channel"] == "b"
    (record,) = await Store(redis, 3600).get([got["apiMessageId"]])
    assert record is not None and record.fields["chain"] == "b"


async def test_a_key_with_no_channel_of_the_route_is_refused_at_accept_time(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "acme", channels=frozenset({"c"}))
    (got,) = await _send(gateway, key, {"to": "0821234567", "content": "hi"})
    assert got["accepted"] is False
    assert got["error"] == "route 'za' sends only on channels this API key may not use"


async def test_a_retry_of_a_routed_message_is_a_duplicate(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "acme")
    msg = {"to": "0821234567", "content": "hi", "clientMessageId": "r-1"}
    (first,) = await _send(gateway, key, msg)
    (again,) = await _send(gateway, key, msg)
    assert again["accepted"] is True and again["apiMessageId"] == first["apiMessageId"]


async def test_metrics_count_messages_per_route_and_channel(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "acme")
    await _send(gateway, key, {"to": "0821234567,0821234568", "content": "hi"},
                {"to": "+33612345678", "content": "salut"},
                {"to": "0821234569", "content": "hi", "channel": "c"})
    async with aiohttp.ClientSession() as http, http.get(gateway + "/metrics") as resp:
        text = await resp.text()
    assert 'smsgw_messages_routed_total{channel="a",route="za"} 2.0' in text
    assert 'smsgw_messages_routed_total{channel="b",route="fr"} 1.0' in text
    assert 'route="default"' not in text and text.count("smsgw_messages_routed_total{") == 2


async def test_admin_routes_lists_the_routes_for_admins_only(gateway: str, redis: Redis) -> None:
    admin = await create_key(Store(redis, 3600), name="a", account="ops",
                             roles=frozenset({"Admin"}), channels=None)
    client = await _key(redis, "acme")
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway + "/admin/routes",
                            headers={"Authorization": f"Bearer {admin}"}) as resp:
            assert resp.status == 200
            routes = (await resp.json())["routes"]
        async with http.get(gateway + "/admin/routes",
                            headers={"Authorization": f"Bearer {client}"}) as resp:
            assert resp.status == 403
    assert [r["name"] for r in routes] == ["vip", "za", "fr"]
    assert routes[1]["channels"] == [{"channel": "a", "weight": 1}]
    assert routes[1]["fallbacks"] == ["b"] and routes[2]["numberCheck"] == "libphonenumber"


async def test_a_weighted_route_splits_10000_messages_within_two_percent_of_its_weights(
    redis_url: str, redis: Redis
) -> None:
    config = {"gateway": {"default_country_code": "27"}, "channels": {"a": {}, "b": {}},
              "routes": [{"name": "split", "channels": {"a": 3, "b": 1}}]}
    runner = web.AppRunner(create_app(settings_from_dict(config, {"REDIS_URL": redis_url},
                                                         source="test.toml")))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        key = await _key(redis, "acme")
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        answers = []
        for chunk in range(10):
            tos = ",".join(f"+2782{chunk:02d}{n:05d}" for n in range(1000))
            answers += await _send(base, key, {"to": tos, "content": "hi"})
    finally:
        await runner.cleanup()
    records = await Store(redis, 3600).get([a["apiMessageId"] for a in answers])
    on_a = sum(1 for r in records if r is not None and r.fields["channel"] == "a")
    assert len(records) == 10_000
    assert abs(on_a / 10_000 - 0.75) < 0.02
