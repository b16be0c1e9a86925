"""Authentication and tenant isolation over real HTTP and a real redis-server.

No worker runs: accepted messages stay queued, which is all a status lookup needs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.auth import KeySpec, hash_secret, issue_key
from gateway.views import admin, send, status
from worker.config import Settings, settings_from_dict
from worker.ids import new_id
from worker.store import Store, api_key_key, msg_key

pytestmark = pytest.mark.integration

SMS = "/communication/message/smpp/sms"
REALM = 'Basic realm="/auth/apikey"'


def _settings(redis_url: str) -> Settings:
    return settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": {"port": 2775, "system_id": "s", "password": "p"},
                      "other": {"port": 2775, "system_id": "s", "password": "p"}}},
        {"REDIS_URL": redis_url}, source="test")


@dataclass
class Gw:
    base: str
    store: Store
    redis: Redis
    http: aiohttp.ClientSession

    async def key(self, account: str, roles: str = "Client", **spec: Any) -> str:
        secret, _ = await issue_key(self.store, KeySpec(
            name=f"{account} key", account=account, roles=frozenset(roles.split(",")), **spec))
        return secret

    async def call(self, method: str, path: str, key: str | None = None,
                   **kwargs: Any) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        async with self.http.request(method, self.base + path, headers=headers,
                                     **kwargs) as resp:
            body = await resp.json() if "json" in resp.content_type else await resp.text()
            return resp.status, body, resp.headers

    async def send(self, key: str, *messages: dict[str, str]) -> list[dict[str, Any]]:
        code, body, _ = await self.call("POST", SMS, key, json={"Messages": list(messages)})
        assert code == 200, body
        return list(body["messages"])


@pytest.fixture
async def gw(redis_url: str, redis: Redis) -> AsyncIterator[Gw]:
    runner = web.AppRunner(create_app(_settings(redis_url)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Gw(f"http://127.0.0.1:{runner.addresses[0][1]}", Store(redis, 3600), redis,
                     http)
    finally:
        await runner.cleanup()


# --- 401 and 403 ---------------------------------------------------------------------------


async def _expired_key(gw: Gw) -> str:
    key = await gw.key("acme")
    await gw.redis.hset(api_key_key(hash_secret(key)), "expires_at", "1")
    return key


async def _disabled_key(gw: Gw) -> str:
    key = await gw.key("acme")
    await gw.redis.hset(api_key_key(hash_secret(key)), "enabled", "0")
    return key


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("case", ["missing", "unknown", "disabled", "expired", "malformed basic",
                                  "basic with a password", "empty bearer"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_bad_credentials_get_401_with_the_realm_and_a_response_status(
    gw: Gw, case: str, fmt: str
) -> None:
    good = await gw.key("acme")
    authorization = {
        "missing": None,
        "unknown": "Bearer sk_" + "x" * 32,
        "disabled": f"Bearer {await _disabled_key(gw)}",
        "expired": f"Bearer {await _expired_key(gw)}",
        "malformed basic": "Basic %%%",
        "basic with a password": _basic(good, "pw"),
        "empty bearer": "Bearer ",
    }[case]
    headers = {"Accept": f"application/{fmt}"}
    if authorization is not None:
        headers["Authorization"] = authorization
    code, body, resp_headers = await gw.call("POST", SMS, headers=headers, json={
        "Messages": [{"to": "+27820000001", "content": "hi"}]})
    assert code == 401
    assert resp_headers["WWW-Authenticate"] == REALM
    if fmt == "json":
        assert body["ResponseStatus"]["ErrorCode"] == "Unauthorized"
        assert body["ResponseStatus"]["Errors"] == []
    else:
        assert "<d2p1:ErrorCode>Unauthorized</d2p1:ErrorCode>" in body
    assert await gw.redis.keys(msg_key("*")) == []


async def test_a_key_works_as_bearer_and_as_basic_user_with_an_empty_password(gw: Gw) -> None:
    key = await gw.key("acme")
    for authorization in (f"Bearer {key}", _basic(key)):
        code, body, _ = await gw.call("POST", SMS, headers={"Authorization": authorization},
                                      json={"Messages": [{"to": "+27820000001", "content": "hi"}]})
        assert code == 200 and body["messages"][0]["accepted"] is True


async def test_a_key_without_any_send_role_gets_403_with_a_response_status(gw: Gw) -> None:
    key = await gw.key("acme")
    await gw.redis.hset(api_key_key(hash_secret(key)), "roles", "")  # e.g. an old record
    for method, path in (("POST", SMS), ("GET", f"{SMS}/{new_id()}")):
        code, body, headers = await gw.call(method, path, key, json={"Messages": []})
        assert code == 403 and "WWW-Authenticate" not in headers
        assert body["ResponseStatus"]["ErrorCode"] == "Forbidden"


async def test_a_client_key_gets_403_from_the_admin_api(gw: Gw) -> None:
    key = await gw.key("acme")
    code, body, _ = await gw.call("GET", "/admin/keys", key)
    assert code == 403 and body["ResponseStatus"]["ErrorCode"] == "Forbidden"


def _guarded_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the send, status and admin operations, from the app itself."""
    handlers = {send.send, status.by_api_id, status.by_client_id, status.batch,
                admin.list_keys, admin.create, admin.show, admin.rotate, admin.enable,
                admin.disable, admin.delete}
    app = create_app(_settings("redis://127.0.0.1:1/0"))
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        path = path.replace("{apiMessageId}", new_id()).replace("{id}", "0123456789abcdef")
        methods = ["GET", "POST"] if route.method == "*" else [route.method]
        if route.handler in handlers:
            out.extend((m, path) for m in methods if m != "HEAD")
    return sorted(set(out))


GUARDED = _guarded_routes()


def test_the_route_table_includes_every_send_and_status_route() -> None:
    paths = {p for _, p in GUARDED}
    assert {SMS, SMS + ".json", SMS + ".xml", SMS + "/status", "/api/SendSMPPSmsRequest",
            "/json/reply/SendSMPPSmsRequest", "/xml/reply/SendSMPPSmsRequest",
            "/json/reply/GetSMPPSmsStatus", "/json/reply/FindSMPPSmsStatus",
            "/json/reply/GetSMPPSmsStatusBatch", "/admin/keys"} <= paths
    assert len(GUARDED) > 40


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
async def test_every_route_of_send_status_and_admin_requires_a_key(
    gw: Gw, method: str, path: str
) -> None:
    code, _, headers = await gw.call(method, path + "?clientMessageId=x&apiMessageIds=y",
                                     data=b"{}", headers={"Content-Type": "application/json"})
    assert code == 401 and headers["WWW-Authenticate"] == REALM


async def test_with_a_metrics_token_metrics_answer_its_bearer_only(redis_url: str) -> None:
    settings = settings_from_dict({}, {"REDIS_URL": redis_url,
                                       "SMSGW_METRICS_TOKEN": "scrape-secret"}, source="test")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    try:
        async with aiohttp.ClientSession() as http:
            for auth in (None, "Bearer wrong", "Basic c2NyYXBlLXNlY3JldDo="):
                headers = {"Authorization": auth} if auth else {}
                async with http.get(url, headers=headers) as resp:
                    assert resp.status == 401
                    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
                    assert "ResponseStatus" in await resp.text()
            async with http.get(url, headers={"Authorization": "Bearer scrape-secret"}) as resp:
                assert resp.status == 200
                assert "smsgw_http_requests_total" in await resp.text()
    finally:
        await runner.cleanup()


async def test_without_a_metrics_token_metrics_are_open(gw: Gw) -> None:
    code, body, _ = await gw.call("GET", "/metrics")
    assert code == 200 and "smsgw_http_requests_total" in str(body)


async def _raw_request(base: str, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, raw bytes) over a socket; the answer."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + b"Host: gw\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    top, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return int(status_line.split()[1]), headers, body


# What a client can put in Authorization that is not ASCII: raw bytes reach the server as-is.
NON_ASCII_CREDENTIALS = [b"Bearer \xff\xfe", b"Bearer sk_\xc3(", b"Basic \xff",
                         "Basic \u00e9".encode(), "Bearer \u00e9".encode()]


@pytest.mark.parametrize("authorization", NON_ASCII_CREDENTIALS, ids=repr)
async def test_non_ascii_credentials_get_401_with_the_challenge_and_no_traceback(
    gw: Gw, authorization: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    code, headers, body = await _raw_request(
        gw.base, b"GET " + SMS.encode() + b"/status?apiMessageIds=x HTTP/1.1\r\n"
        b"Authorization: " + authorization + b"\r\n")
    assert code == 401 and headers["www-authenticate"] == REALM
    assert json.loads(body)["ResponseStatus"]["ErrorCode"] == "Unauthorized"
    assert not [r for r in caplog.records if r.exc_info or r.levelno > logging.WARNING]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) <= 1


@pytest.mark.parametrize("authorization", NON_ASCII_CREDENTIALS, ids=repr)
async def test_non_ascii_credentials_on_metrics_with_a_token_get_401_and_no_traceback(
    redis_url: str, authorization: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = settings_from_dict({}, {"REDIS_URL": redis_url,
                                       "SMSGW_METRICS_TOKEN": "scrape-secret"}, source="test")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        code, headers, _ = await _raw_request(
            f"http://127.0.0.1:{runner.addresses[0][1]}",
            b"GET /metrics HTTP/1.1\r\nAuthorization: " + authorization + b"\r\n")
    finally:
        await runner.cleanup()
    assert code == 401 and headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert not [r for r in caplog.records if r.exc_info or r.levelno > logging.WARNING]


async def test_query_names_bind_case_insensitively_on_every_status_route(gw: Gw) -> None:
    key = await gw.key("acme")
    (sent,) = await gw.send(key, {"to": "+27820000001", "content": "hi",
                                  "clientMessageId": "c-1"})
    api_id = sent["apiMessageId"]
    for path in (f"{SMS}?clientmessageid=c-1", f"{SMS}?CLIENTMESSAGEID=c-1",
                 "/json/reply/FindSMPPSmsStatus?ClientMessageId=c-1",
                 f"{SMS}/status?apimessageids={api_id}", f"{SMS}/status?ApiMessageIds={api_id}",
                 f"/api/GetSMPPSmsStatus?ApiMessageId={api_id}",
                 f"/api/GetSMPPSmsStatusBatch?APIMESSAGEIDS={api_id}"):
        code, body, _ = await gw.call("GET", path, key)
        assert code == 200, (path, body)
        assert [m["apiMessageId"] for m in body["messages"]] == [api_id], path
    code, body, _ = await gw.call("GET", f"{SMS}?clientMessageId=c-1&Format=xml", key)
    assert code == 200 and body.startswith("<?xml")


async def test_a_get_status_lookup_of_a_thousand_ids_is_served(gw: Gw) -> None:
    key = await gw.key("acme")
    (sent,) = await gw.send(key, {"to": "+27820000001", "content": "hi"})
    ids = [new_id() for _ in range(999)] + [sent["apiMessageId"]]
    for sep in (",", "%2C"):  # what a client that encodes commas sends is longer still
        code, body, _ = await gw.call("GET", f"{SMS}/status?apiMessageIds={sep.join(ids)}", key)
        assert code == 200, body
        assert [m["apiMessageId"] for m in body["messages"]] == [sent["apiMessageId"]]


async def test_a_request_line_beyond_the_raised_limit_is_still_refused(gw: Gw) -> None:
    code, _, _ = await _raw_request(gw.base, b"GET /" + b"x" * 40_000 + b" HTTP/1.1\r\n")
    assert code == 400


# --- isolation ---------------------------------------------------------------------------------


@dataclass
class Tenants:
    acme: str  # Client of account acme
    other: str  # Client of account other
    kid: str  # Client of account kid, owned by reseller
    reseller: str  # Partner of account reseller
    admin: str
    ids: dict[str, str]  # account -> the apiMessageId of its message


@pytest.fixture
async def tenants(gw: Gw) -> Tenants:
    t = Tenants(acme=await gw.key("acme"), other=await gw.key("other"),
                kid=await gw.key("kid", parent_account="reseller"),
                reseller=await gw.key("reseller", "Partner"), admin=await gw.key("ops", "Admin"),
                ids={})
    for account, key in (("acme", t.acme), ("other", t.other), ("kid", t.kid)):
        (msg,) = await gw.send(key, {"to": "+27820000001", "content": f"for {account}",
                                     "clientMessageId": f"cm-{account}"})
        t.ids[account] = msg["apiMessageId"]
    return t


async def _looks_unknown(gw: Gw, key: str, api_id: str) -> bool:
    """The answer for ``api_id`` is exactly the answer for a never-issued id."""
    unknown = new_id()
    seen = await gw.call("GET", f"{SMS}/{api_id}", key)
    fresh = await gw.call("GET", f"{SMS}/{unknown}", key)
    return seen[0] == fresh[0] == 404 and seen[1] == _swap(fresh[1], unknown, api_id)


def _swap(body: Any, old: str, new: str) -> Any:
    if isinstance(body, dict):
        return {k: _swap(v, old, new) for k, v in body.items()}
    if isinstance(body, list):
        return [_swap(v, old, new) for v in body]
    return body.replace(old, new) if isinstance(body, str) else body


async def _batch(gw: Gw, key: str, ids: list[str]) -> set[str]:
    code, body, _ = await gw.call("POST", f"{SMS}/status", key, json={"apiMessageIds": ids})
    assert code == 200
    return {m["apiMessageId"] for m in body["messages"]}


async def test_a_client_sees_only_its_own_account_by_id_by_client_id_and_in_batch(
    gw: Gw, tenants: Tenants
) -> None:
    ids = tenants.ids
    assert (await gw.call("GET", f"{SMS}/{ids['acme']}", tenants.acme))[0] == 200
    assert await _looks_unknown(gw, tenants.acme, ids["other"])
    assert await _looks_unknown(gw, tenants.acme, ids["kid"])
    code, _, _ = await gw.call("GET", SMS, tenants.acme, params={"clientMessageId": "cm-other"})
    assert code == 404
    code, body, _ = await gw.call("GET", SMS, tenants.acme, params={"clientMessageId": "cm-acme"})
    assert code == 200 and [m["apiMessageId"] for m in body["messages"]] == [ids["acme"]]
    assert await _batch(gw, tenants.acme, list(ids.values())) == {ids["acme"]}


async def test_a_partner_sees_its_own_and_its_childrens_messages_and_no_others(
    gw: Gw, tenants: Tenants
) -> None:
    ids = tenants.ids
    (own,) = await gw.send(tenants.reseller, {"to": "+27820000002", "content": "mine",
                                              "clientMessageId": "cm-reseller"})
    assert (await gw.call("GET", f"{SMS}/{ids['kid']}", tenants.reseller))[0] == 200
    assert (await gw.call("GET", f"{SMS}/{own['apiMessageId']}", tenants.reseller))[0] == 200
    assert await _looks_unknown(gw, tenants.reseller, ids["acme"])
    code, _, _ = await gw.call("GET", SMS, tenants.reseller,
                               params={"clientMessageId": "cm-acme"})
    assert code == 404
    code, body, _ = await gw.call("GET", SMS, tenants.reseller,
                                  params={"clientMessageId": "cm-kid"})
    assert code == 200 and [m["apiMessageId"] for m in body["messages"]] == [ids["kid"]]
    assert await _batch(gw, tenants.reseller, [*ids.values(), own["apiMessageId"]]) == {
        ids["kid"], own["apiMessageId"]}
    # the child does not see its parent
    assert await _looks_unknown(gw, tenants.kid, own["apiMessageId"])


async def test_an_admin_sees_every_account(gw: Gw, tenants: Tenants) -> None:
    assert await _batch(gw, tenants.admin, list(tenants.ids.values())) == set(
        tenants.ids.values())


async def test_client_message_ids_are_per_account(gw: Gw, tenants: Tenants) -> None:
    (again,) = await gw.send(tenants.other, {"to": "+27820000001", "content": "for acme",
                                             "clientMessageId": "cm-acme"})
    assert again["accepted"] is True and again["apiMessageId"] not in tenants.ids.values()


async def test_channel_permissions_apply_per_message(gw: Gw) -> None:
    key = await gw.key("acme", channels=frozenset({"sim"}))
    allowed, refused = await gw.send(key, {"channel": "sim", "to": "+27820000001", "content": "a"},
                                     {"channel": "other", "to": "+27820000001", "content": "b"})
    assert allowed["accepted"] is True
    assert refused["accepted"] is False and "not allowed" in refused["error"]


# --- keys at rest, in logs, and the cost of a request -------------------------------------------


async def test_keys_are_stored_only_as_hashes(gw: Gw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [await gw.key("acme"), await gw.key("reseller", "Partner", rate=5),
               await gw.key("ops", "Admin")]
    await gw.send(secrets[0], {"to": "+27820000001", "content": "hi"})
    await gw.call("GET", "/admin/keys", secrets[2])
    await gw.call("GET", f"{SMS}/{new_id()}", secrets[1] + "x")  # a near miss, 401
    dump = await _everything(gw.redis)
    for secret in secrets:
        assert secret not in dump
        assert secret not in caplog.text
        assert api_key_key(hash_secret(secret)) in dump
    assert "sk_" not in dump


async def _everything(redis: Redis) -> str:
    """Every key name and value in Redis, as text."""
    parts: list[str] = []
    async for name in redis.scan_iter(count=1000):
        kind = (await redis.type(name)).decode()
        value: Any = {
            "string": redis.get, "hash": redis.hgetall, "set": redis.smembers,
            "list": lambda n: redis.lrange(n, 0, -1),
            "zset": lambda n: redis.zrange(n, 0, -1, withscores=True),
        }[kind](name)
        parts.append(f"{name!r} {await value!r}")
    return "\n".join(parts)


async def test_last_used_is_recorded_at_most_once_a_minute(gw: Gw) -> None:
    key = await gw.key("acme")
    record = api_key_key(hash_secret(key))
    assert await gw.redis.hget(record, "last_used") is None
    await gw.call("GET", f"{SMS}/{new_id()}", key)
    first = await gw.redis.hget(record, "last_used")
    await gw.call("GET", f"{SMS}/{new_id()}", key)
    assert first is not None and await gw.redis.hget(record, "last_used") == first


async def _commands_during(gw: Gw, key: str, recipients: int) -> list[str]:
    """Commands the gateway sent to Redis while answering one send of ``recipients``."""
    to = ",".join(f"+2782{i:07d}" for i in range(recipients))
    marker = f"end-{new_id()}"
    seen: list[str] = []
    async with gw.redis.monitor() as monitor:
        await gw.send(key, {"to": to, "content": "x"})
        await gw.redis.echo(marker)
        while True:
            cmd = await monitor.next_command()
            if marker in cmd["command"]:
                return seen
            if cmd["client_type"] != "lua":
                seen.append(cmd["command"].split(" ", 1)[0].upper())


async def test_a_send_costs_at_most_two_redis_round_trips_whatever_its_size(gw: Gw) -> None:
    key = await gw.key("acme", rate=1000, burst=1000, daily_quota=100_000)
    await gw.send(key, {"to": "+27820000001", "content": "warm-up"})  # loads the scripts
    one = await _commands_during(gw, key, 1)
    many = await _commands_during(gw, key, 200)
    # auth (skipped while this gateway remembers the key) + (limits and accept) in one script
    assert one[-1] == many[-1] == "EVALSHA" and set(one) == set(many) == {"EVALSHA"}
    assert len(one) <= 2 and len(many) <= 2
