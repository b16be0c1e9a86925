"""SMPP users through the admin API over real HTTP, checked by binding with smpplib to a real
SMPP server on the same real redis-server: what an Admin and a Partner may do, the password
shown once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.smpp_server.server import SmppServer, running
from tests.esme import Esme
from tests.integration.support import serving_gateway
from tests.integration.test_admin import BOOTSTRAP, Api, _settings
from tests.integration.test_smpp_server import in_thread, smpp_settings

pytestmark = pytest.mark.integration

USERS = "/admin/smpp-users"
ESME_RINVPASWD = 0x0E
ESME_RBINDFAIL = 0x0D


@pytest.fixture
async def api(redis_url: str, redis: Redis) -> AsyncIterator[Api]:
    async with serving_gateway(_settings(redis_url, BOOTSTRAP)) as base, \
            aiohttp.ClientSession() as http:
        yield Api(base, redis, http)


@pytest.fixture
async def server(redis_url: str) -> AsyncIterator[SmppServer]:
    async with running(smpp_settings(redis_url), "127.0.0.1", 0) as srv:
        yield srv


async def binds(server: SmppServer, system_id: str, password: str) -> int:
    """The bind_transmitter's command_status (the connection closed after)."""
    esme = Esme(server.port).connect()
    try:
        return int(await in_thread(esme.bind, "transmitter", system_id, password))
    finally:
        await in_thread(esme.close)


async def test_an_admin_creates_shows_lists_disables_enables_and_rotates_an_smpp_user(
    api: Api, server: SmppServer,
) -> None:
    created = await api.ok("POST", USERS, BOOTSTRAP, json={
        "systemId": "acme01", "account": "acme", "channels": ["sim"], "rate": 50,
        "dailyQuota": 1000, "maxBinds": 2})
    password, user = created["password"], created["smppUser"]
    assert len(password) == 8
    assert {k: user[k] for k in ("systemId", "account", "roles", "channels", "rate",
                                 "dailyQuota", "maxBinds", "enabled")} == {
        "systemId": "acme01", "account": "acme", "roles": ["Client"], "channels": ["sim"],
        "rate": 50, "dailyQuota": 1000, "maxBinds": 2, "enabled": True}
    assert await binds(server, "acme01", password) == 0

    shown = await api.ok("GET", f"{USERS}/acme01", BOOTSTRAP)
    assert shown["smppUser"]["systemId"] == "acme01" and "password" not in shown
    listed = await api.ok("GET", USERS, BOOTSTRAP, params={"account": "acme"})
    assert [u["systemId"] for u in listed["results"]] == ["acme01"]
    assert (await api.ok("GET", USERS, BOOTSTRAP, params={"account": "other"}))["results"] == []

    off = await api.ok("POST", f"{USERS}/acme01/disable", BOOTSTRAP)
    assert off["smppUser"]["enabled"] is False and "password" not in off
    assert await binds(server, "acme01", password) == ESME_RBINDFAIL
    await api.ok("POST", f"{USERS}/acme01/enable", BOOTSTRAP)
    assert await binds(server, "acme01", password) == 0

    rotated = await api.ok("POST", f"{USERS}/acme01/rotate", BOOTSTRAP)
    assert rotated["password"] != password and rotated["smppUser"]["rotatedAt"]
    assert await binds(server, "acme01", password) == ESME_RINVPASWD
    assert await binds(server, "acme01", rotated["password"]) == 0
    assert (await api.call("GET", f"{USERS}/nobody", BOOTSTRAP))[0] == 404


async def test_smpp_user_requests_are_served_on_the_predefined_routes_in_json_and_xml(
    api: Api,
) -> None:
    created = await api.ok("POST", "/json/reply/CreateSmppUser", BOOTSTRAP, json={
        "systemId": "x1", "account": "acme"})
    assert created["smppUser"]["systemId"] == "x1"
    code, xml = await api.call("GET", "/xml/reply/GetSmppUser?systemId=x1", BOOTSTRAP)
    assert code == 200 and "<systemId>x1</systemId>" in xml


async def test_invalid_or_taken_system_ids_are_400_naming_the_field(api: Api) -> None:
    for body in ({"systemId": "bad id!", "account": "acme"},
                 {"systemId": "waytoolongsystemid", "account": "acme"},
                 {"systemId": "ok1", "account": "acme", "maxBinds": 0}):
        code, reply = await api.call("POST", USERS, BOOTSTRAP, json=body)
        assert code == 400 and reply["ResponseStatus"]["ErrorCode"] == "Invalid", body
    await api.ok("POST", USERS, BOOTSTRAP, json={"systemId": "taken", "account": "acme"})
    code, reply = await api.call("POST", USERS, BOOTSTRAP, json={
        "systemId": "taken", "account": "other"})
    assert code == 400 and reply["ResponseStatus"]["Errors"][0]["FieldName"] == "systemId"


@pytest.fixture
async def partner(api: Api) -> str:
    """A Partner key of account 'reseller' (rate 10, channel sim) that owns account 'kid'."""
    made = await api.ok("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "reseller", "account": "reseller", "roles": ["Partner"], "channels": ["sim"],
        "rate": 10})
    await api.ok("POST", "/admin/keys", made["key"], json={"name": "kid", "account": "kid"})
    return str(made["key"])


async def test_a_partner_manages_smpp_users_of_its_child_accounts_within_its_own_rights(
    api: Api, partner: str, server: SmppServer,
) -> None:
    created = await api.ok("POST", USERS, partner, json={"systemId": "kid01", "account": "kid"})
    user = created["smppUser"]
    assert (user["channels"], user["rate"], user["roles"]) == (["sim"], 10, ["Client"])
    assert await binds(server, "kid01", created["password"]) == 0
    await api.ok("POST", USERS, BOOTSTRAP, json={"systemId": "acme01", "account": "acme"})

    assert [u["systemId"] for u in (await api.ok("GET", USERS, partner))["results"]] == ["kid01"]
    rotated = await api.ok("POST", f"{USERS}/kid01/rotate", partner)
    assert await binds(server, "kid01", rotated["password"]) == 0
    await api.ok("POST", f"{USERS}/kid01/disable", partner)
    assert await binds(server, "kid01", rotated["password"]) == ESME_RBINDFAIL

    refusals = [
        {"systemId": "k2", "account": "acme"},  # an account it does not own
        {"systemId": "k2", "account": "reseller"},  # its own account
        {"systemId": "k2", "account": "kid", "roles": ["Admin"]},
        {"systemId": "k2", "account": "kid", "rate": 100},  # more than its own
        {"systemId": "k2", "account": "kid", "channels": ["*"]},
    ]
    for body in refusals:
        code, reply = await api.call("POST", USERS, partner, json=body)
        assert code == 403 and reply["ResponseStatus"]["ErrorCode"] == "Forbidden", body
    # a user it may not manage looks like an unknown one
    for method, path in (("GET", f"{USERS}/acme01"), ("POST", f"{USERS}/acme01/rotate"),
                         ("POST", f"{USERS}/acme01/disable")):
        assert (await api.call(method, path, partner))[0] == 404, path
    assert (await api.call("GET", f"{USERS}/k2", BOOTSTRAP))[0] == 404  # nothing was stored


async def test_a_client_key_manages_no_smpp_users(api: Api) -> None:
    client = (await api.ok("POST", "/admin/keys", BOOTSTRAP, json={
        "name": "c", "account": "acme"}))["key"]
    await api.ok("POST", USERS, BOOTSTRAP, json={"systemId": "acme01", "account": "acme"})
    for method, path in (("GET", USERS), ("POST", USERS), ("GET", f"{USERS}/acme01"),
                         ("POST", f"{USERS}/acme01/rotate")):
        code, reply = await api.call(method, path, client, json={
            "systemId": "c1", "account": "acme"})
        assert code == 403 and reply["ResponseStatus"]["ErrorCode"] == "Forbidden", path
