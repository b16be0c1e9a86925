"""Tenancy over real HTTP and a real redis-server: a Partner grants no more than it has,
MO messages have one owner, and an account's parent is set explicitly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from tests.integration.test_admin import BOOTSTRAP, Api
from worker.config import Settings, settings_from_dict

pytestmark = pytest.mark.integration


def _settings(redis_url: str) -> Settings:
    channel = {"port": 2775, "system_id": "s", "password": "p"}
    return settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": channel, "sim2": {**channel, "mo_default_account": "ops"}}},
        {"REDIS_URL": redis_url, "SMSGW_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP}, source="test")


@pytest.fixture
async def api(redis_url: str, redis: Redis) -> AsyncIterator[Api]:
    runner = web.AppRunner(create_app(_settings(redis_url)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(f"http://127.0.0.1:{runner.addresses[0][1]}", redis, http)
    finally:
        await runner.cleanup()


LIMITED_PARTNER = {"name": "reseller", "account": "reseller", "roles": ["Partner"],
                   "channels": ["sim"], "rate": 5, "burst": 5, "dailyQuota": 100,
                   "expiresAt": "2098-01-01T00:00:00Z"}


@pytest.fixture
async def limited(api: Api) -> str:
    return str((await api.ok("POST", "/admin/keys", BOOTSTRAP, json=LIMITED_PARTNER))["key"])


def _refused_field(code: int, reply: Any) -> str:
    assert code == 403, reply
    status = reply["ResponseStatus"]
    assert status["ErrorCode"] == "Forbidden"
    (error,) = status["Errors"]
    assert error["FieldName"] in status["Message"]
    return str(error["FieldName"])


@pytest.mark.parametrize(("wider", "field"), [
    ({"channels": ["*"]}, "channels"),
    ({"channels": ["sim", "sim2"]}, "channels"),
    ({"rate": 6}, "rate"),
    ({"burst": 50}, "burst"),
    ({"dailyQuota": 1000}, "dailyQuota"),
    ({"expiresAt": "2099-01-01T00:00:00Z"}, "expiresAt"),
])
async def test_a_partner_cannot_create_a_key_beyond_its_own_and_the_answer_names_the_field(
    api: Api, limited: str, wider: dict[str, Any], field: str
) -> None:
    code, reply = await api.call("POST", "/admin/keys", limited,
                                 json={"name": "kid", "account": "kid", **wider})
    assert _refused_field(code, reply) == field
    assert (await api.ok("GET", "/admin/keys", limited))["results"] == []  # nothing stored


async def test_what_a_partner_leaves_unset_on_a_new_key_is_its_own(
    api: Api, limited: str
) -> None:
    info = (await api.ok("POST", "/admin/keys", limited,
                         json={"name": "kid", "account": "kid"}))["apiKey"]
    assert {k: info[k] for k in ("channels", "rate", "burst", "dailyQuota", "expiresAt")} == {
        "channels": ["sim"], "rate": 5, "burst": 5, "dailyQuota": 100,
        "expiresAt": "2098-01-01T00:00:00.000+00:00"}
    lower = (await api.ok("POST", "/admin/keys", limited, json={
        "name": "kid2", "account": "kid", "channels": ["sim"], "rate": 2, "dailyQuota": 10,
        "expiresAt": "2097-01-01"}))["apiKey"]
    assert (lower["rate"], lower["burst"], lower["dailyQuota"]) == (2, 2, 10)


async def test_a_partner_cannot_rotate_or_enable_a_key_beyond_its_own_but_may_disable_it(
    api: Api, limited: str
) -> None:
    await api.ok("POST", "/admin/keys", limited, json={"name": "kid", "account": "kid"})
    wide = (await api.ok("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "wide", "account": "kid", "channels": ["*"]}))["apiKey"]
    await api.ok("POST", f"/admin/keys/{wide['id']}/disable", limited)
    for action in ("enable", "rotate"):
        code, reply = await api.call("POST", f"/admin/keys/{wide['id']}/{action}", limited)
        assert _refused_field(code, reply) == "channels"
    shown = (await api.ok("GET", f"/admin/keys/{wide['id']}", BOOTSTRAP))["apiKey"]
    assert shown["enabled"] is False and "rotatedAt" not in shown  # nulls are omitted


async def test_an_inbound_url_can_be_set_only_for_channels_the_callers_key_may_use(
    api: Api, limited: str
) -> None:
    await api.ok("POST", "/admin/keys", limited, json={"name": "kid", "account": "kid"})
    url = {"url": "https://hooks.example.com/mo"}
    for account in ("kid", "reseller"):
        code, reply = await api.call("PUT", f"/admin/accounts/{account}/inbound/sim2", limited,
                                     json=url)
        assert _refused_field(code, reply) == "channel"
        code, reply = await api.call("POST", "/json/reply/SetInboundUrl", limited,
                                     json={"account": account, "channel": "sim2", **url})
        assert _refused_field(code, reply) == "channel"
        await api.ok("PUT", f"/admin/accounts/{account}/inbound/sim", limited, json=url)
    shown = await api.ok("GET", "/admin/accounts/kid/webhooks", BOOTSTRAP)
    assert shown["webhooks"]["inboundUrls"] == [{"channel": "sim", **url}]
