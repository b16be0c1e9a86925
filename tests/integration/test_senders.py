"""A message's sender over real HTTP and a real redis-server: accepted or refused by the API
key's allowed senders (JSON and XML), stored and shown by the status lookup, routed by it;
allowed senders set over the admin API and the CLI, a Partner never granting more than its own."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.auth import KeySpec, issue_key
from gateway.cli import build_parser
from gateway.keys_cli import run_keys
from gateway.smpp_server.users_cli import run_smpp_users
from tests.integration.support import message_status as _status
from tests.integration.support import send_messages as _send
from tests.integration.support import serving_gateway
from worker.config import settings_from_dict
from worker.senders import Senders
from worker.store import Store, msg_key

pytestmark = pytest.mark.integration

PATH = "/communication/message/smpp/sms"
NS = "http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel"
CONFIG: dict[str, Any] = {
    "gateway": {"default_country_code": "27", "default_channel": "sim"},
    "channels": {"sim": {}, "brand": {}, "premium": {}},
    "routes": [
        {"name": "acme-brand", "senders": ["Acme"], "channels": ["brand"]},
        {"name": "premium", "by_name": True, "channels": ["premium"]},
    ],
}


@pytest.fixture
async def gateway(redis_url: str) -> AsyncIterator[str]:
    settings = settings_from_dict(CONFIG, {"REDIS_URL": redis_url}, source="test.toml")
    async with serving_gateway(settings) as base:
        yield base


async def _key(redis: Redis, *senders: str, roles: str = "Client",
               account: str = "acme") -> str:
    secret, _ = await issue_key(Store(redis, 3600), KeySpec(
        name="t", account=account, roles=frozenset({roles}), senders=Senders.of(senders)))
    return secret


async def test_an_allowed_sender_is_accepted_stored_shown_and_echoed(
    gateway: str, redis: Redis
) -> None:
    key = await _key(redis, "Acme", "4470*")
    answers = await _send(gateway, key,
                          {"to": "+27820000001", "content": "hi", "sender": "+447012345678",
                           "channel": "sim"},
                          {"to": "+27820000002", "content": "hi", "SENDER": "Acme"},
                          {"to": "+27820000003", "content": "hi"})
    assert [a["accepted"] for a in answers] == [True, True, True]
    assert answers[0]["msg"] == {"channel": "sim", "to": "27820000001", "content": "hi",
                                 "sender": "+447012345678"}
    assert answers[1]["msg"]["sender"] == "Acme"
    assert "sender" not in answers[2]["msg"]  # none given: none echoed
    first = await _status(gateway, key, answers[0]["apiMessageId"])
    assert first["sender"] == "+447012345678" and first["channel"] == "sim"
    routed = await _status(gateway, key, answers[1]["apiMessageId"])
    assert (routed["sender"], routed["route"], routed["channel"]) == (
        "Acme", "acme-brand", "brand")  # routed by its sender
    plain = await _status(gateway, key, answers[2]["apiMessageId"])
    assert "sender" not in plain and plain["route"] == "default"
    assert not await redis.hexists(msg_key(answers[2]["apiMessageId"]), "sender")


@pytest.mark.parametrize(("allowed", "sender", "error"), [
    ((), "Acme", "sender 'Acme' is not allowed"),  # no list: no sender may be chosen
    (("Acme",), "ACME", "sender 'ACME' is not allowed"),
    (("4470*",), "447112345678", "sender '447112345678' is not allowed"),
    (("*",), "AcmeBankLtd12", "sender 'AcmeBankLtd12' is not a sender"),
    (("*",), "1234567890123456", "has 16 digits"),
])
async def test_a_sender_not_allowed_is_refused_and_stores_nothing(
    gateway: str, redis: Redis, allowed: tuple[str, ...], sender: str, error: str
) -> None:
    key = await _key(redis, *allowed)
    before = set(await redis.keys(msg_key("*")))
    refused, fine = await _send(gateway, key,
                                {"to": "+27820000001", "content": "hi", "sender": sender},
                                {"to": "+27820000002", "content": "hi"})
    assert refused["accepted"] is False and error in refused["error"]
    assert refused["msg"]["sender"] == sender
    assert fine["accepted"] is True
    # the other message of the request goes on; the refused one left no record
    assert set(await redis.keys(msg_key("*"))) - before == {
        msg_key(fine["apiMessageId"]).encode()}


async def test_xml_carries_the_sender_in_any_element_order(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "Acme")
    body = (f'<SendSMPPSmsRequest xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns="{NS}"><Messages><SMPPMessage><sender>Acme</sender><to>0820000001</to>'
            "<content>Hi</content></SMPPMessage><SMPPMessage><content>Hi</content>"
            "<to>0820000002</to><sender>Other</sender></SMPPMessage>"
            "<SMPPMessage><to>0820000003</to><content>Hi</content></SMPPMessage>"
            "</Messages></SendSMPPSmsRequest>")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http, \
            http.post(gateway + PATH, data=body,
                      headers={"Content-Type": "application/xml",
                               "Accept": "application/xml"}) as resp:
        assert resp.status == 200
        root = ET.fromstring(await resp.text())
    msgs = root.findall(f"{{{NS}}}messages/{{{NS}}}SMPPResponseMsg")
    assert [m.findtext(f"{{{NS}}}accepted") for m in msgs] == ["true", "false", "true"]
    assert msgs[0].findtext(f"{{{NS}}}msg/{{{NS}}}sender") == "Acme"
    assert msgs[1].findtext(f"{{{NS}}}error") == "sender 'Other' is not allowed"
    assert msgs[2].find(f"{{{NS}}}msg/{{{NS}}}sender") is None  # none: left out, not nil


async def test_a_by_name_route_takes_only_messages_naming_it(gateway: str, redis: Redis) -> None:
    key = await _key(redis)
    named, plain = await _send(gateway, key,
                               {"to": "+27820000001", "content": "hi", "channel": "route:premium"},
                               {"to": "+27820000002", "content": "hi"})
    assert named["msg"]["channel"] == "premium" and plain["msg"]["channel"] == "sim"


async def test_a_retry_with_another_sender_is_a_conflict(gateway: str, redis: Redis) -> None:
    key = await _key(redis, "*")
    (first,) = await _send(gateway, key, {"to": "+27820000001", "content": "hi",
                                          "sender": "Acme", "clientMessageId": "c1"})
    (same,) = await _send(gateway, key, {"to": "+27820000001", "content": "hi",
                                         "sender": "Acme", "clientMessageId": "c1"})
    (other,) = await _send(gateway, key, {"to": "+27820000001", "content": "hi",
                                          "sender": "Other", "clientMessageId": "c1"})
    assert same["apiMessageId"] == first["apiMessageId"]
    assert other["accepted"] is False and "different content, channel, sender" in other["error"]


async def _admin(base: str, key: str, method: str, path: str,
                 body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http, \
            http.request(method, base + path, json=body) as resp:
        return resp.status, await resp.json()


async def test_keys_get_senders_at_creation_and_by_update(gateway: str, redis: Redis) -> None:
    admin = await _key(redis, roles="Admin", account="ops")
    status, made = await _admin(gateway, admin, "POST", "/admin/keys",
                                {"name": "k", "account": "acme", "senders": ["Acme", "4470*"]})
    assert status == 200 and made["apiKey"]["senders"] == ["Acme", "4470*"]
    key_id = made["apiKey"]["id"]
    (ok,) = await _send(gateway, made["key"], {"to": "+27820000001", "content": "hi",
                                               "sender": "Acme"})
    assert ok["accepted"] is True
    status, changed = await _admin(gateway, admin, "PUT", f"/admin/keys/{key_id}/senders",
                                   {"senders": ["Other"]})
    assert status == 200 and changed["apiKey"]["senders"] == ["Other"]
    (no,) = await _send(gateway, made["key"], {"to": "+27820000001", "content": "hi",
                                               "sender": "Acme"})
    assert no["accepted"] is False  # at once on this gateway (its key cache is per row)
    status, bad = await _admin(gateway, admin, "PUT", f"/admin/keys/{key_id}/senders",
                               {"senders": ["44*70"]})
    assert status == 400 and bad["ResponseStatus"]["Errors"][0]["FieldName"] == "senders"
    status, cleared = await _admin(gateway, admin, "PUT", f"/admin/keys/{key_id}/senders", {})
    assert status == 200 and cleared["apiKey"]["senders"] == []


async def test_a_partner_grants_no_senders_beyond_its_own(gateway: str, redis: Redis) -> None:
    partner = await _key(redis, "Acme", "4470*", roles="Partner", account="reseller")
    status, made = await _admin(gateway, partner, "POST", "/admin/keys",
                                {"name": "k", "account": "kid"})
    assert status == 200 and made["apiKey"]["senders"] == ["Acme", "4470*"]  # its own
    status, narrower = await _admin(gateway, partner, "POST", "/admin/keys",
                                    {"name": "k2", "account": "kid", "senders": ["447012*"]})
    assert status == 200 and narrower["apiKey"]["senders"] == ["447012*"]
    for senders in (["*"], ["Other"], ["44*"]):
        status, refused = await _admin(gateway, partner, "POST", "/admin/keys",
                                       {"name": "k3", "account": "kid", "senders": senders})
        assert status == 403 and refused["ResponseStatus"]["Errors"][0]["FieldName"] == "senders"
    key_id = narrower["apiKey"]["id"]
    status, _ = await _admin(gateway, partner, "PUT", f"/admin/keys/{key_id}/senders",
                             {"senders": ["*"]})
    assert status == 403
    status, _ = await _admin(gateway, partner, "PUT", f"/admin/keys/{key_id}/senders",
                             {"senders": ["Acme"]})
    assert status == 200


async def test_smpp_users_get_senders_over_the_admin_api(gateway: str, redis: Redis) -> None:
    admin = await _key(redis, roles="Admin", account="ops")
    status, made = await _admin(gateway, admin, "POST", "/admin/smpp-users",
                                {"systemId": "acme1", "account": "acme", "senders": ["ACME"]})
    assert status == 200 and made["smppUser"]["senders"] == ["ACME"]
    status, changed = await _admin(gateway, admin, "PUT", "/admin/smpp-users/acme1/senders",
                                   {"senders": ["4470*", "*"]})
    assert status == 200 and changed["smppUser"]["senders"] == ["4470*", "*"]
    await _key(redis)  # the account acme
    partner = await _key(redis, "ACME", roles="Partner", account="reseller")
    status, _ = await _admin(gateway, admin, "PUT", "/admin/accounts/acme",
                             {"parentAccount": "reseller"})
    assert status == 200
    status, refused = await _admin(gateway, partner, "PUT", "/admin/smpp-users/acme1/senders",
                                   {"senders": ["Other"]})
    assert status == 403 and refused["ResponseStatus"]["Errors"][0]["FieldName"] == "senders"
    status, fine = await _admin(gateway, partner, "PUT", "/admin/smpp-users/acme1/senders",
                                {"senders": ["ACME"]})
    assert status == 200 and fine["smppUser"]["senders"] == ["ACME"]


async def test_admin_routes_show_senders_and_by_name(gateway: str, redis: Redis) -> None:
    admin = await _key(redis, roles="Admin", account="ops")
    status, body = await _admin(gateway, admin, "GET", "/admin/routes")
    assert status == 200
    brand, premium, default = body["routes"]
    assert brand["senders"] == ["Acme"] and brand["byName"] is False
    assert premium["byName"] is True and default["name"] == "default"


async def _cli(redis_url: str, capsys: pytest.CaptureFixture[str], *argv: str
               ) -> tuple[int, str, str]:
    capsys.readouterr()
    args = build_parser().parse_args(argv)
    settings = settings_from_dict({}, {"REDIS_URL": redis_url}, "test")
    code = await (run_keys(args, settings) if argv[0] == "keys" else
                  run_smpp_users(args, settings))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_cli_sets_a_keys_senders(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await _cli(redis_url, capsys, "keys", "create", "--name", "k",
                              "--account", "acme", "--senders", "Acme,4470*")
    assert code == 0
    key_id = err.split()[2]
    _, out, _ = await _cli(redis_url, capsys, "keys", "show", key_id, "--json")
    assert json.loads(out)["senders"] == ["Acme", "4470*"]
    assert (await _cli(redis_url, capsys, "keys", "set-senders", key_id, "*"))[0] == 0
    _, out, _ = await _cli(redis_url, capsys, "keys", "show", key_id, "--json")
    assert json.loads(out)["senders"] == ["*"]
    code, _, err = await _cli(redis_url, capsys, "keys", "set-senders", key_id, "44*70")
    assert code == 2 and "'44*70' is not a sender" in err
    assert (await _cli(redis_url, capsys, "keys", "set-senders", "nope", "Acme"))[0] == 1


async def test_the_cli_sets_an_smpp_users_senders(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = await _cli(redis_url, capsys, "smpp-users", "create", "--system-id", "acme1",
                            "--account", "acme", "--senders", "ACME")
    assert code == 0
    _, out, _ = await _cli(redis_url, capsys, "smpp-users", "list", "--json")
    assert json.loads(out)[0]["senders"] == ["ACME"]
    assert (await _cli(redis_url, capsys, "smpp-users", "set-senders", "acme1", "4470*",
                       "Acme"))[0] == 0
    _, out, _ = await _cli(redis_url, capsys, "smpp-users", "list", "--json")
    assert json.loads(out)[0]["senders"] == ["4470*", "Acme"]
    assert (await _cli(redis_url, capsys, "smpp-users", "set-senders", "acme1"))[0] == 0
    _, out, _ = await _cli(redis_url, capsys, "smpp-users", "list", "--json")
    assert json.loads(out)[0]["senders"] == []
