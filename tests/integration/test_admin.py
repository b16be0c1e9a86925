"""The admin API over real HTTP and a real redis-server: round trips in JSON and XML, what a
Partner may and may not manage, the bootstrap Admin key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.auth import KeySpec, hash_secret, issue_key
from gateway.dto import DC_NS
from tests.integration.support import serving_gateway
from worker.config import ConfigError, Settings, settings_from_dict
from worker.store import Store, api_key_key

pytestmark = pytest.mark.integration

SMS = "/communication/message/smpp/sms"
BOOTSTRAP = "sk_bootstrap_0123456789abcdefghij"


def _settings(redis_url: str, bootstrap: str = "") -> Settings:
    env = {"REDIS_URL": redis_url}
    if bootstrap:
        env["SMSGW_BOOTSTRAP_ADMIN_KEY"] = bootstrap
    return settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": {"port": 2775, "system_id": "s", "password": "p"}}},
        env, source="test")


@dataclass
class Api:
    base: str
    redis: Redis
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, key: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers,
                                     **kwargs) as resp:
            body = await resp.json() if "json" in resp.content_type else await resp.text()
            return resp.status, body

    async def ok(self, method: str, path: str, key: str, **kwargs: Any) -> Any:
        code, body = await self.call(method, path, key, **kwargs)
        assert code == 200, body
        return body

    async def sends(self, key: str) -> int:
        code, _ = await self.call("POST", SMS, key, json={
            "Messages": [{"to": "+27820000001", "content": "hi"}]})
        return code


@pytest.fixture
async def api(redis_url: str, redis: Redis) -> AsyncIterator[Api]:
    async with serving_gateway(_settings(redis_url, BOOTSTRAP)) as base, \
            aiohttp.ClientSession() as http:
        yield Api(base, redis, http)


async def test_the_bootstrap_key_is_an_admin_key_created_once_at_start(
    api: Api, redis_url: str
) -> None:
    (only,) = (await api.ok("GET", "/admin/keys", BOOTSTRAP))["results"]
    assert only["roles"] == ["Admin"] and only["account"] == "admin" and only["enabled"]
    # a second start (another instance, a restart) keeps the one record
    runner = web.AppRunner(create_app(_settings(redis_url, BOOTSTRAP)))
    await runner.setup()
    await runner.cleanup()
    assert len((await api.ok("GET", "/admin/keys", BOOTSTRAP))["results"]) == 1


async def test_an_admin_round_trips_a_key_through_every_operation(api: Api) -> None:
    next_year = datetime.now(UTC).year + 1  # expiries are bounded to 10 years from now
    created = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "shop", "account": "acme", "roles": ["Client"], "channels": ["sim"],
        "rate": 50, "burst": 100, "dailyQuota": 10000,
        "expiresAt": f"{next_year}-01-01T00:00:00Z"})
    key, info = created["key"], created["apiKey"]
    assert key.startswith("sk_") and len(key) >= 30
    assert {k: info[k] for k in ("name", "account", "roles", "channels", "rate", "burst",
                                 "dailyQuota", "enabled", "expiresAt")} == {
        "name": "shop", "account": "acme", "roles": ["Client"], "channels": ["sim"],
        "rate": 50, "burst": 100, "dailyQuota": 10000, "enabled": True,
        "expiresAt": f"{next_year}-01-01T00:00:00.000+00:00"}
    key_id = info["id"]
    assert await api.sends(key) == 200

    shown = (await api.ok("GET", f"/admin/keys/{key_id}", BOOTSTRAP))["apiKey"]
    assert shown["lastUsedAt"] and "key" not in shown
    listed = (await api.ok("GET", "/admin/keys", BOOTSTRAP, params={"account": "acme"}))
    assert [k["id"] for k in listed["results"]] == [key_id]

    await api.ok("POST", f"/admin/keys/{key_id}/disable", BOOTSTRAP)
    assert await api.sends(key) == 401
    await api.ok("POST", f"/admin/keys/{key_id}/enable", BOOTSTRAP)
    assert await api.sends(key) == 200

    rotated = await api.ok("POST", f"/admin/keys/{key_id}/rotate", BOOTSTRAP)
    assert rotated["apiKey"]["id"] == key_id and rotated["apiKey"]["rotatedAt"]
    assert await api.sends(key) == 401 and await api.sends(rotated["key"]) == 200

    await api.ok("DELETE", f"/admin/keys/{key_id}", BOOTSTRAP)
    assert await api.sends(rotated["key"]) == 401
    assert (await api.call("GET", f"/admin/keys/{key_id}", BOOTSTRAP))[0] == 404
    assert await api.redis.exists(api_key_key(hash_secret(rotated["key"]))) == 0


async def test_the_predefined_routes_and_xml_carry_the_same_operations(api: Api) -> None:
    body = (f'<CreateApiKey xmlns="{DC_NS}"><account>acme</account><name>xml</name>'
            "<rate>5</rate><roles xmlns:a=\"http://schemas.microsoft.com/2003/10/Serialization/"
            'Arrays"><a:string>Client</a:string></roles></CreateApiKey>')
    code, xml = await api.call("POST", "/xml/reply/CreateApiKey", BOOTSTRAP, data=body,
                               headers={"Content-Type": "application/xml"})
    assert code == 200 and xml.startswith('<?xml version="1.0" encoding="utf-8"?><ApiKeyResponse')
    assert "<rate>5</rate>" in xml and "<burst>5</burst>" in xml
    key_id = xml.split("<id>", 1)[1].split("</id>", 1)[0]
    shown = await api.ok("POST", "/json/reply/GetApiKey", BOOTSTRAP, json={"Id": key_id})
    assert shown["apiKey"]["name"] == "xml"
    listed = await api.ok("GET", "/api/GetApiKeys?Account=acme", BOOTSTRAP)
    assert [k["id"] for k in listed["results"]] == [key_id]
    await api.ok("POST", "/api/DisableApiKey", BOOTSTRAP, json={"id": key_id})
    shown = await api.ok("GET", f"/json/reply/GetApiKey?id={key_id}", BOOTSTRAP)
    assert shown["apiKey"]["enabled"] is False


async def test_invalid_key_requests_are_400_naming_the_field(api: Api) -> None:
    for body, field in (({"account": "acme"}, "name"),
                        ({"name": "n", "account": "a:b"}, "account"),
                        ({"name": "n", "account": "acme", "roles": ["Root"]}, "roles"),
                        ({"name": "n", "account": "acme", "expiresAt": "soon"}, "expiresAt")):
        code, reply = await api.call("POST", "/admin/keys", BOOTSTRAP, json=body)
        assert code == 400 and reply["ResponseStatus"]["Errors"][0]["FieldName"] == field


@pytest.mark.parametrize("expires", ["999999w", "9999-12-31", "3654d"])
async def test_an_expiry_beyond_ten_years_is_400_naming_expires_at_and_stores_nothing(
    api: Api, expires: str
) -> None:
    code, reply = await api.call("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "n", "account": "acme", "expiresAt": expires})
    assert code == 400 and reply["ResponseStatus"]["Errors"][0]["FieldName"] == "expiresAt"
    listed = await api.ok("GET", "/admin/keys", BOOTSTRAP)
    assert [k["account"] for k in listed["results"]] == ["admin"]


async def test_a_stored_expiry_out_of_range_does_not_break_listing_or_showing(api: Api) -> None:
    created = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": "n", "account": "acme"})
    key_id = created["apiKey"]["id"]
    await api.redis.hset(api_key_key(hash_secret(created["key"])), "expires_at",
                         str(604_799_395_200_000_000))  # 999999 weeks, as once stored
    listed = await api.ok("GET", "/admin/keys", BOOTSTRAP)
    assert {k["id"] for k in listed["results"]} >= {key_id}
    shown = await api.ok("GET", f"/admin/keys/{key_id}", BOOTSTRAP)
    assert shown["apiKey"]["expiresAt"].startswith("9999-12-31")


@pytest.fixture
async def partner(api: Api) -> str:
    created = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "reseller", "account": "reseller", "roles": ["Partner"]})
    return str(created["key"])


async def test_a_partner_creates_and_manages_client_keys_of_the_accounts_it_owns(
    api: Api, partner: str
) -> None:
    created = await api.ok("POST", "/admin/keys", partner, json={"name": "kid", "account": "kid"})
    assert created["apiKey"]["parentAccount"] == "reseller"
    assert created["apiKey"]["roles"] == ["Client"]
    kid_id = created["apiKey"]["id"]
    assert await api.sends(created["key"]) == 200
    listed = await api.ok("GET", "/admin/keys", partner)
    assert [k["id"] for k in listed["results"]] == [kid_id]
    await api.ok("POST", f"/admin/keys/{kid_id}/disable", partner)
    assert await api.sends(created["key"]) == 401
    await api.ok("DELETE", f"/admin/keys/{kid_id}", partner)


async def test_a_partner_cannot_reach_beyond_its_client_keys(api: Api, partner: str) -> None:
    other = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": "o", "account": "acme"})
    other_id = other["apiKey"]["id"]
    kid = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "kid partner", "account": "kid", "parentAccount": "reseller",
        "roles": ["Partner"]})
    refusals = [
        ("POST", "/admin/keys", {"name": "x", "account": "acme"}),  # an account it does not own
        ("POST", "/admin/keys", {"name": "x", "account": "reseller"}),  # its own account
        ("POST", "/admin/keys", {"name": "x", "account": "kid", "roles": ["Admin"]}),
        ("POST", "/admin/keys", {"name": "x", "account": "new", "parentAccount": "acme"}),
    ]
    for method, path, body in refusals:
        code, reply = await api.call(method, path, partner, json=body)
        assert code == 403 and reply["ResponseStatus"]["ErrorCode"] == "Forbidden", body
    # keys it may not manage look like unknown ones
    for key_id in (other_id, kid["apiKey"]["id"]):
        assert (await api.call("GET", f"/admin/keys/{key_id}", partner))[0] == 404
        assert (await api.call("POST", f"/admin/keys/{key_id}/rotate", partner))[0] == 404
    assert (await api.ok("GET", "/admin/keys", partner))["results"] == []
    assert await api.sends(other["key"]) == 200  # untouched


async def test_a_partner_cannot_adopt_an_account_that_already_exists(
    api: Api, partner: str, redis: Redis
) -> None:
    await issue_key(Store(redis, 3600), KeySpec(name="solo", account="solo"))
    code, _ = await api.call("POST", "/admin/keys", partner, json={"name": "x", "account": "solo"})
    assert code == 403


async def test_a_client_key_manages_nothing(api: Api) -> None:
    created = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": "c", "account": "a"})
    key, key_id = created["key"], created["apiKey"]["id"]
    for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys"),
                         ("GET", f"/admin/keys/{key_id}"), ("DELETE", f"/admin/keys/{key_id}"),
                         ("POST", f"/admin/keys/{key_id}/rotate"),
                         ("POST", "/json/reply/CreateApiKey")):
        code, reply = await api.call(method, path, key, json={"name": "x", "account": "a"})
        assert code == 403 and reply["ResponseStatus"]["ErrorCode"] == "Forbidden", path


async def test_a_bootstrap_key_too_short_to_be_random_stops_the_start(redis_url: str) -> None:
    runner = web.AppRunner(create_app(_settings(redis_url, "sk_short")))
    with pytest.raises(ConfigError, match="SMSGW_BOOTSTRAP_ADMIN_KEY"):
        await runner.setup()
    await runner.cleanup()
