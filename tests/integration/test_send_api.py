"""The send and status operations over real HTTP and a real redis-server (no worker needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.keys_cli import create_key
from gateway.operations import ADMIN_OPERATIONS
from worker.config import settings_from_dict
from worker.ids import new_id
from worker.redisproc import RedisProcess
from worker.store import Joined, NewMessage, NewPart, Store, Wake, msg_key, pending_key

pytestmark = pytest.mark.integration

PATH = "/communication/message/smpp/sms"
NS = "http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel"


@dataclass
class Api:
    base: str
    http: aiohttp.ClientSession
    redis: Redis

    async def post(self, path: str, body: Any = None, *, data: bytes | str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
        async with self.http.post(self.base + path, json=body if data is None else None,
                                  data=data, headers=headers) as resp:
            text = await resp.text()
            return resp.status, _parse(resp.content_type, text), resp.content_type

    async def post_xml(self, path: str, message: str) -> tuple[int, Any, str]:
        """A send of one SMPPMessage (its child elements) in XML, answered in XML."""
        body = (f'<SendSMPPSmsRequest xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
                f'xmlns="{NS}"><Messages><SMPPMessage>{message}</SMPPMessage></Messages>'
                "</SendSMPPSmsRequest>")
        return await self.post(path, data=body, headers={
            "Content-Type": "application/xml", "Accept": "application/xml"})

    async def get(self, path: str, **params: str) -> tuple[int, Any, str]:
        async with self.http.get(self.base + path, params=params) as resp:
            text = await resp.text()
            return resp.status, _parse(resp.content_type, text), resp.content_type


def _parse(content_type: str, text: str) -> Any:
    import json

    return json.loads(text) if content_type == "application/json" else text


async def _serve(redis_url: str, max_body: int = 4 * 1024 * 1024) -> web.AppRunner:
    settings = settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27",
                     "max_messages_per_request": 5, "max_body_bytes": max_body},
         "channels": {"sim": {}, "other": {}}},
        {"REDIS_URL": redis_url}, source="test")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.fixture
async def api(redis_url: str, redis: Redis) -> AsyncIterator[Api]:
    runner = await _serve(redis_url, max_body=64 * 1024)
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=frozenset({"sim"}))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        yield Api(f"http://127.0.0.1:{runner.addresses[0][1]}", http, redis)
    await runner.cleanup()


def _one(to: str = "+27820000001", **extra: str) -> dict[str, Any]:
    return {"Messages": [{"to": to, "content": "hello", **extra}]}


async def _queued_jobs(redis: Redis) -> int:
    return int(await redis.zcard("arq:queue"))


@pytest.mark.parametrize("path", [PATH, PATH + ".json", "/api/SendSMPPSmsRequest",
                                  "/json/reply/SendSMPPSmsRequest"])
async def test_every_json_route_accepts_a_message(api: Api, path: str) -> None:
    status, body, ctype = await api.post(path, _one())
    assert status == 200 and ctype == "application/json"
    assert body["messages"][0]["accepted"] is True


async def test_api_route_reads_json_sent_as_text_plain(api: Api) -> None:
    status, body, _ = await api.post(
        "/api/SendSMPPSmsRequest", data='{"messages":[{"to":"0820000001","content":"x"}]}',
        headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert status == 200 and body["messages"][0]["to"] == "27820000001"


@pytest.mark.parametrize("path", [PATH, PATH + ".xml", "/xml/reply/SendSMPPSmsRequest"])
async def test_xml_routes_accept_the_seed_request_shape_and_answer_xml(api: Api, path: str) -> None:
    status, text, ctype = await api.post_xml(
        path, "<to>0820000001</to><content>Hi</content><channel>sim</channel>")
    assert status == 200 and ctype == "application/xml"
    assert "<accepted>true</accepted>" in text and "<to>27820000001</to>" in text


async def test_accept_header_picks_xml_for_a_json_request(api: Api) -> None:
    status, text, ctype = await api.post(PATH, _one(), headers={"Accept": "application/xml"})
    assert status == 200 and ctype == "application/xml" and text.startswith("<?xml")


async def test_a_bad_message_is_refused_and_the_others_proceed(api: Api) -> None:
    body = {"Messages": [
        {"to": "+27820000001", "content": "fine"},
        {"to": "12ab", "content": "bad number"},
        {"to": "+27820000002", "content": ""},
        {"to": "+27820000003", "content": "x", "channel": "nope"},
        {"to": "+27820000004", "content": "x", "channel": "other"},  # not allowed to the key
    ]}
    status, reply, _ = await api.post(PATH, body)
    assert status == 200
    accepted = [m["accepted"] for m in reply["messages"]]
    assert accepted == [True, False, False, False, False]
    errors = [m.get("error", "") for m in reply["messages"][1:]]
    assert "phone number" in errors[0] and "content" in errors[1]
    assert "does not exist" in errors[2] and "not allowed" in errors[3]


async def test_several_recipients_get_one_id_each_and_repeats_are_sent_once(api: Api) -> None:
    status, reply, _ = await api.post(
        PATH, _one(to="+27 82 000 0001; 0820000002, 0027820000001"))
    assert status == 200
    assert [m["to"] for m in reply["messages"]] == ["27820000001", "27820000002"]
    assert len({m["apiMessageId"] for m in reply["messages"]}) == 2


async def test_same_client_message_id_returns_the_original_ids_and_sends_nothing_new(
    api: Api,
) -> None:
    _, first, _ = await api.post(PATH, _one(clientMessageId="c-1"))
    jobs = await _queued_jobs(api.redis)
    _, again, _ = await api.post(PATH, _one(clientMessageId="c-1"))
    assert again["messages"][0]["apiMessageId"] == first["messages"][0]["apiMessageId"]
    assert again["messages"][0]["accepted"] is True
    assert await _queued_jobs(api.redis) == jobs
    _, other, _ = await api.post(PATH, {"Messages": [
        {"to": "+27820000001", "content": "changed", "clientMessageId": "c-1"}]})
    assert other["messages"][0]["accepted"] is False
    assert "different content" in other["messages"][0]["error"]


async def test_racing_requests_with_one_client_message_id_make_one_message(api: Api) -> None:
    replies = await asyncio.gather(*(api.post(PATH, _one(clientMessageId="race"))
                                     for _ in range(20)))
    ids = {r[1]["messages"][0]["apiMessageId"] for r in replies}
    assert len(ids) == 1
    assert len([k async for k in api.redis.scan_iter(msg_key("*"))]) == 1


@pytest.mark.parametrize(("body", "code"), [
    ({"Messages": []}, "NotEmpty"),
    ({}, "NotEmpty"),
    ({"Messages": [{"to": "+27820000001", "content": "x"}] * 6}, "TooMany"),
    ({"Messages": [{"to": ",".join(f"+2782000000{i}" for i in range(6)), "content": "x"}]},
     "TooMany"),
])
async def test_whole_request_errors_are_400_with_a_response_status(
    api: Api, body: dict[str, Any], code: str
) -> None:
    status, reply, _ = await api.post(PATH, body)
    assert status == 400 and reply["ResponseStatus"]["ErrorCode"] == code
    assert reply["ResponseStatus"]["Errors"][0]["FieldName"] == "Messages"
    assert await _queued_jobs(api.redis) == 0


async def test_an_unparseable_body_is_400(api: Api) -> None:
    status, reply, _ = await api.post(PATH, data="{nope",
                                      headers={"Content-Type": "application/json"})
    assert status == 400 and "ResponseStatus" in reply


async def test_a_billion_laughs_body_is_refused_with_400(api: Api) -> None:
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">'
                     for i in range(1, 10)).replace("&lol0;", "&lol;")
           + f']><SendSMPPSmsRequest xmlns="{NS}"><Messages>&lol9;</Messages>'
           "</SendSMPPSmsRequest>")
    status, text, ctype = await api.post(PATH, data=lol, headers={
        "Content-Type": "application/xml"})
    assert status == 400 and ctype == "application/xml" and "ResponseStatus" in text


async def test_a_body_over_the_size_limit_is_413(api: Api) -> None:
    big = {"Messages": [{"to": "+27820000001", "content": "x" * (70 * 1024)}]}
    status, reply, _ = await api.post(PATH, big)
    assert status == 413 and reply["ResponseStatus"]["ErrorCode"]


async def test_unknown_routes_and_methods_answer_404_and_405(api: Api) -> None:
    status, reply, _ = await api.get("/nowhere")
    assert status == 404 and "ResponseStatus" in reply
    async with api.http.delete(api.base + PATH) as resp:
        assert resp.status == 405


async def test_status_lookups_by_id_by_client_id_and_in_batch(api: Api) -> None:
    _, sent, _ = await api.post(PATH, _one(to="0820000001,0820000002", clientMessageId="s-1"))
    ids = [m["apiMessageId"] for m in sent["messages"]]
    status, one, _ = await api.get(f"{PATH}/{ids[0]}")
    assert status == 200 and one["messages"][0]["status"] == "queued"
    assert one["messages"][0]["encoding"] == "gsm7" and one["messages"][0]["segments"] == 1
    status, xml, ctype = await api.get(f"{PATH}/{ids[0]}.xml")
    assert status == 200 and ctype == "application/xml" and ids[0] in xml
    status, both, _ = await api.get(PATH, clientMessageId="s-1")
    assert sorted(m["apiMessageId"] for m in both["messages"]) == sorted(ids)
    status, batch, _ = await api.get(f"{PATH}/status", apiMessageIds=",".join(ids))
    assert status == 200 and len(batch["messages"]) == 2
    status, missing, _ = await api.get(f"{PATH}/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert status == 404 and "ResponseStatus" in missing


def _iso_z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


async def test_a_scheduled_message_is_due_at_its_time_and_its_status_says_when(api: Api) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    until = later + timedelta(hours=2)
    status, reply, _ = await api.post(PATH, _one(scheduledAt=_iso_z(later),
                                                 validUntil=_iso_z(until)))
    (answer,) = reply["messages"]
    assert status == 200 and answer["accepted"] is True
    assert (answer["msg"]["scheduledAt"], answer["msg"]["validUntil"]) == (
        _iso_z(later), _iso_z(until))  # echoed as given
    api_id = answer["apiMessageId"]
    assert await api.redis.zscore(pending_key("sim"), api_id) == later.timestamp() * 1000
    _, found, _ = await api.get(f"{PATH}/{api_id}")
    (record,) = found["messages"]
    assert record["status"] == "queued"
    assert (record["scheduledAt"], record["validUntil"]) == (
        later.isoformat(timespec="milliseconds"), until.isoformat(timespec="milliseconds"))
    # XML: the extension elements in any order
    status, text, _ = await api.post_xml(
        PATH, f"<scheduledAt>{_iso_z(later)}</scheduledAt><to>0820000002</to><content>Hi</content>")
    assert status == 200 and "<accepted>true</accepted>" in text
    assert f"<scheduledAt>{_iso_z(later)}</scheduledAt>" in text and "validUntil" not in text


async def test_a_retry_must_repeat_the_schedule_and_validity_of_its_client_message_id(
    api: Api,
) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    first = _one(clientMessageId="promo-7", scheduledAt=_iso_z(later))
    _, reply, _ = await api.post(PATH, first)
    (sent,) = reply["messages"]
    _, again, _ = await api.post(PATH, first)  # the same request: the same message
    assert again["messages"][0]["apiMessageId"] == sent["apiMessageId"]
    for changed in ({"scheduledAt": _iso_z(later + timedelta(minutes=5))},
                    {"validUntil": _iso_z(later + timedelta(hours=1))},
                    {"scheduledAt": None}):
        retry = {"Messages": [{**first["Messages"][0], **changed}]}
        _, other, _ = await api.post(PATH, retry)
        (answer,) = other["messages"]
        assert answer["accepted"] is False and "clientMessageId" in answer["error"], changed
    assert await api.redis.zcard(pending_key("sim")) == 1


async def test_a_bad_schedule_or_validity_is_refused_and_stores_nothing(api: Api) -> None:
    now = datetime.now(UTC)
    bad = [
        {"scheduledAt": "tomorrow"},
        {"scheduledAt": "2030-01-01T10:00:00"},  # no offset
        {"scheduledAt": _iso_z(now + timedelta(days=31))},  # over 30 days ahead
        {"validUntil": _iso_z(now - timedelta(minutes=1))},  # already ended
        {"scheduledAt": _iso_z(now + timedelta(hours=2)),
         "validUntil": _iso_z(now + timedelta(hours=1))},  # ends before its time
        {"validUntil": _iso_z(now + timedelta(days=8))},  # longer than the retention
    ]
    errors = []
    for request in (bad[:3], bad[3:]):  # at most 5 messages a request here
        status, reply, _ = await api.post(PATH, {"Messages": [
            {"to": "+27820000001", "content": "x", **b} for b in request]})
        assert status == 200
        assert [m["accepted"] for m in reply["messages"]] == [False] * len(request)
        errors += [m["error"] for m in reply["messages"]]
    assert "'scheduledAt' is not an ISO 8601 time" in errors[0]
    assert "offset from UTC" in errors[1] and "at most 30 days ahead" in errors[2]
    assert all(e.startswith("'validUntil'") for e in errors[3:]), errors
    assert await api.redis.zcard(pending_key("sim")) == 0


async def test_a_part_id_an_smpp_client_was_given_finds_its_message(api: Api) -> None:
    store = Store(api.redis, 3600)
    message = NewMessage(api_id=new_id(), account="acme", channel="sim", to="27820000001",
                         content="", encoding="", segments=0, door="smpp", source="ACME")
    wake = Wake("wake1", b"job", 60)
    first, second = (NewPart(message=message, ref_bits=8, ref=1, total=2, seq=seq,
                             data_coding=0, octets=text) for seq, text in ((1, b"he"), (2, b"y")))
    assert (await store.store_part(first, None, wait_ms=60_000, wake=wake)).kind == "stored"
    joined = Joined("hey", "gsm7", 1, [(1, b"he"), (2, b"y")])
    assert (await store.store_part(second, joined, wait_ms=60_000, wake=wake)).kind == "sent"
    status, one, _ = await api.get(f"{PATH}/{message.api_id}-2")
    assert status == 200 and one["messages"][0]["apiMessageId"] == message.api_id
    assert one["messages"][0]["partIds"] == [f"{message.api_id}-1", f"{message.api_id}-2"]
    assert one["messages"][0]["partsArrived"] == "2/2"
    status, batch, _ = await api.get(f"{PATH}/status",
                                     apiMessageIds=f"{message.api_id}-1,{message.api_id}-2")
    assert status == 200 and [m["apiMessageId"] for m in batch["messages"]] == [message.api_id]


async def test_redis_down_gives_503_stores_nothing_and_recovers() -> None:
    server = RedisProcess(appendonly=True, fsync="always")
    url = await server.start()
    redis = Redis.from_url(url)
    runner = await _serve(url)
    key = await create_key(Store(redis, 3600), name="t", account="acme",
                           roles=frozenset({"Client"}), channels=None)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            await server.halt()
            async with http.post(base + PATH, json=_one()) as resp:
                assert resp.status == 503
                assert (await resp.json())["ResponseStatus"]["ErrorCode"]
            await server.start()  # same data, same port
            assert [k async for k in redis.scan_iter(msg_key("*"))] == []
            assert await _queued_jobs(redis) == 0
            async with http.post(base + PATH, json=_one()) as resp:
                assert resp.status == 200  # the gateway reconnects by itself
            assert len([k async for k in redis.scan_iter(msg_key("*"))]) == 1
    finally:
        await redis.aclose()
        await runner.cleanup()
        await server.stop()


async def test_openapi_document_covers_every_operation_and_its_schemas(api: Api) -> None:
    status, doc, _ = await api.get("/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    ops = {op["operationId"].split("_")[0] for path in doc["paths"].values()
           for op in path.values()}
    assert {"SendSMPPSmsRequest", "GetSMPPSmsStatus", "FindSMPPSmsStatus",
            "GetSMPPSmsStatusBatch", "GetSMPPMoMessages"} <= ops
    assert set(ADMIN_OPERATIONS) <= ops  # every admin operation is documented
    schemas = doc["components"]["schemas"]
    assert set(schemas["SMPPMessage"]["properties"]) == {
        "channel", "to", "content", "clientMessageId", "sender", "scheduledAt", "validUntil"}
    assert "ResponseStatus" in schemas
    async with api.http.get(api.base + "/docs") as resp:
        assert resp.status == 200 and "openapi.json" in await resp.text()
