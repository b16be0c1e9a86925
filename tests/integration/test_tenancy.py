"""Tenancy over real HTTP and a real redis-server: a Partner grants no more than it has,
MO messages have one owner, and an account's parent is set explicitly."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gateway.accounts_cli import run_accounts
from gateway.cli import build_parser
from gateway.keys_cli import run_keys
from gateway.numbers_cli import run_numbers
from tests.integration.support import serving_gateway
from tests.integration.test_admin import BOOTSTRAP, Api
from tests.integration.test_webhooks import waiting
from worker.config import Settings, settings_from_dict
from worker.ids import new_id
from worker.store import MoPart, Store, WebhookStore

pytestmark = pytest.mark.integration


def _settings(redis_url: str) -> Settings:
    channel = {"port": 2775, "system_id": "s", "password": "p"}
    return settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": channel, "sim2": {**channel, "mo_default_account": "ops"}}},
        {"REDIS_URL": redis_url, "SMSGW_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP}, source="test")


@pytest.fixture
async def api(redis_url: str, redis: Redis) -> AsyncIterator[Api]:
    async with serving_gateway(_settings(redis_url)) as base, aiohttp.ClientSession() as http:
        yield Api(base, redis, http)


# Expiries within the 10 years a key may run, whatever year the tests run in.
PARTNER_EXPIRY = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
LATER, EARLIER = PARTNER_EXPIRY + timedelta(days=1), PARTNER_EXPIRY - timedelta(days=1)

LIMITED_PARTNER = {"name": "reseller", "account": "reseller", "roles": ["Partner"],
                   "channels": ["sim"], "rate": 5, "burst": 5, "dailyQuota": 100,
                   "expiresAt": PARTNER_EXPIRY.isoformat()}


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
    ({"expiresAt": LATER.isoformat()}, "expiresAt"),
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
        "expiresAt": PARTNER_EXPIRY.isoformat(timespec="milliseconds")}
    lower = (await api.ok("POST", "/admin/keys", limited, json={
        "name": "kid2", "account": "kid", "channels": ["sim"], "rate": 2, "dailyQuota": 10,
        "expiresAt": EARLIER.isoformat()}))["apiKey"]
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


# --- MO messages have one owner ------------------------------------------------------------


async def _mo(store: Store, to: str, *, channel: str = "sim", default: str = "") -> str:
    return await store.record_mo(MoPart(api_id=new_id(), channel=channel, source="27821234567",
                                        destination=to, body=b"hi", default_account=default))


async def _inbox(redis: Redis, account: str) -> tuple[list[str], list[str]]:
    """(MO ids listed for the account, MO ids queued for its webhook, sorted: they are in the
    streams of their shards)."""
    listed = [m["id"] for m in await WebhookStore(redis).account_mo(account, 100)]
    queued = sorted(f[b"id"].decode() for f in await waiting(redis, account))
    return listed, queued


async def test_an_mo_goes_only_to_the_account_that_owns_its_destination(
    api: Api, redis: Redis
) -> None:
    for account in ("acme", "beta"):
        await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": account, "account": account})
        await api.ok("PUT", f"/admin/accounts/{account}/inbound/sim", BOOTSTRAP,
                     json={"url": f"https://{account}.example.com/mo"})
    assigned = await api.ok("PUT", "/admin/channels/sim/numbers/12345", BOOTSTRAP,
                            json={"account": "acme"})
    assert assigned["assignment"] == {"channel": "sim", "number": "12345", "account": "acme"}
    store = Store(redis, 3600)
    owned, plus = await _mo(store, "12345"), await _mo(store, "+12345")
    unowned = await _mo(store, "999", default="beta")  # the channel's default account
    nobody = await _mo(store, "888")  # no owner, no default: Admins only
    assert await _inbox(redis, "acme") == ([plus, owned], sorted([owned, plus]))
    assert await _inbox(redis, "beta") == ([unowned], [unowned])
    listed = await api.ok("GET", "/communication/message/smpp/mo?channel=sim", BOOTSTRAP)
    assert {m["moMessageId"] for m in listed["messages"]} == {owned, plus, unowned, nobody}


async def test_the_mo_listing_shows_a_client_its_accounts_messages_and_an_admin_all(
    api: Api, redis: Redis
) -> None:
    keys = {a: (await api.ok("POST", "/admin/keys", BOOTSTRAP,
                             json={"name": a, "account": a}))["key"] for a in ("acme", "beta")}
    await api.ok("PUT", "/admin/channels/sim/numbers/111", BOOTSTRAP, json={"account": "acme"})
    store = Store(redis, 3600)
    mine, other = await _mo(store, "111"), await _mo(store, "222", channel="sim2", default="ops")
    assert [m["moMessageId"] for m in (await api.ok(
        "GET", "/communication/message/smpp/mo", keys["acme"]))["messages"]] == [mine]
    assert (await api.ok("GET", "/communication/message/smpp/mo", keys["beta"]))[
        "messages"] == []
    everything = await api.ok("GET", "/communication/message/smpp/mo", BOOTSTRAP)
    assert {m["moMessageId"]: m["account"] for m in everything["messages"]} == {
        other: "ops", mine: "acme"}


async def test_numbers_are_assigned_listed_and_unassigned_by_admins_only(
    api: Api, limited: str
) -> None:
    await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": "acme", "account": "acme"})
    path = "/admin/channels/sim/numbers"
    await api.ok("PUT", f"{path}/+27820001111", BOOTSTRAP, json={"account": "acme"})
    await api.ok("POST", "/json/reply/AssignChannelNumber", BOOTSTRAP,
                 json={"channel": "sim", "number": "555", "account": "acme"})
    listed = await api.ok("GET", path, BOOTSTRAP)
    assert [(n["number"], n["account"]) for n in listed["results"]] == [
        ("27820001111", "acme"), ("555", "acme")]
    shown = await api.ok("GET", f"{path}/27820001111", BOOTSTRAP)
    assert shown["assignment"]["account"] == "acme"
    xml = await api.ok("GET", f"{path}.xml", BOOTSTRAP)
    assert "<ChannelNumbersResponse" in xml and "<number>555</number>" in xml
    for method, where, body in (("PUT", f"{path}/1", {"account": "acme"}), ("GET", path, None),
                                ("DELETE", f"{path}/555", None)):
        code, reply = await api.call(method, where, limited, json=body)
        assert code == 403 and reply["ResponseStatus"]["ErrorCode"] == "Forbidden"
    for where, body, code in ((f"{path}/1", {"account": "nobody"}, 404),
                              (f"{path}/1", {}, 400), (f"{path}/1:2", {"account": "acme"}, 400),
                              ("/admin/channels/nosuch/numbers/1", {"account": "acme"}, 400)):
        assert (await api.call("PUT", where, BOOTSTRAP, json=body))[0] == code, where
    await api.ok("DELETE", f"{path}/555", BOOTSTRAP)
    assert (await api.call("GET", f"{path}/555", BOOTSTRAP))[0] == 404
    assert (await api.call("DELETE", f"{path}/555", BOOTSTRAP))[0] == 404


# --- an account's parent is set explicitly -------------------------------------------------


async def test_an_admin_sees_and_changes_the_parent_of_an_account_a_partner_claimed(
    api: Api, limited: str
) -> None:
    squat = (await api.ok("POST", "/admin/keys", limited,
                          json={"name": "b", "account": "bigcorp"}))["apiKey"]
    assert (squat["parentAccount"], squat["accountOwnership"]) == ("reseller", "Partner")
    created = (await api.ok("POST", "/admin/keys", BOOTSTRAP,
                            json={"name": "real", "account": "bigcorp"}))["apiKey"]
    assert (created["parentAccount"], created["accountOwnership"]) == ("reseller", "Partner")
    shown = (await api.ok("GET", "/admin/accounts/bigcorp", BOOTSTRAP))["account"]
    assert (shown["account"], shown["parentAccount"], shown["ownership"]) == (
        "bigcorp", "reseller", "Partner")

    freed = await api.ok("PUT", "/admin/accounts/bigcorp", BOOTSTRAP,
                         json={"parentAccount": None})
    assert freed["account"]["ownership"] == "Admin" and "parentAccount" not in freed["account"]
    assert (await api.ok("GET", "/admin/keys", limited))["results"] == []
    for method, path in (("POST", f"/admin/keys/{created['id']}/disable"),
                         ("GET", "/communication/message/smpp/mo?account=bigcorp")):
        assert (await api.call(method, path, limited))[0] == 404, path
    code, _ = await api.call("POST", "/admin/keys", limited,
                             json={"name": "again", "account": "bigcorp"})
    assert code == 403  # cannot claim it back
    code, _ = await api.call("PUT", "/admin/accounts/bigcorp", limited,
                             json={"parentAccount": "reseller"})
    assert code == 403

    given = await api.ok("POST", "/json/reply/UpdateAccount", BOOTSTRAP,
                         json={"account": "bigcorp", "parentAccount": "reseller"})
    assert (given["account"]["parentAccount"], given["account"]["ownership"]) == (
        "reseller", "Admin")
    listed = (await api.ok("GET", "/admin/keys", limited))["results"]
    assert {(k["account"], k["accountOwnership"]) for k in listed} == {("bigcorp", "Admin")}


async def test_an_account_parent_must_be_another_known_account(api: Api) -> None:
    await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": "a", "account": "acme"})
    for account, parent, code in (("nobody", "", 404), ("acme", "nosuch", 400),
                                  ("acme", "acme", 400)):
        got, _ = await api.call("PUT", f"/admin/accounts/{account}", BOOTSTRAP,
                                json={"parentAccount": parent})
        assert got == code, (account, parent)


async def test_a_partner_cannot_claim_an_account_an_admin_created_even_without_keys(
    api: Api, limited: str
) -> None:
    key = (await api.ok("POST", "/admin/keys", BOOTSTRAP,
                        json={"name": "b", "account": "bigcorp"}))["apiKey"]
    assert key["accountOwnership"] == "Admin"
    await api.ok("DELETE", f"/admin/keys/{key['id']}", BOOTSTRAP)
    code, _ = await api.call("POST", "/admin/keys", limited,
                             json={"name": "b", "account": "bigcorp"})
    assert code == 403


# --- the command line -----------------------------------------------------------------------


async def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    runner = {"numbers": run_numbers, "accounts": run_accounts, "keys": run_keys}
    return await runner[args.command](args, settings)


async def _cli(redis_url: str, capsys: pytest.CaptureFixture[str], *argv: str
               ) -> tuple[int, str, str]:
    capsys.readouterr()
    args = build_parser().parse_args(list(argv))
    code = await run_cli(args, _settings(redis_url))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_numbers_cli_assigns_lists_and_unassigns(
    api: Api, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await api.ok("POST", "/admin/keys", BOOTSTRAP, json={"name": "acme", "account": "acme"})
    assert (await _cli(redis_url, capsys, "numbers", "assign", "sim", "+12345", "acme"))[0] == 0
    code, out, _ = await _cli(redis_url, capsys, "numbers", "list", "sim", "--json")
    assert code == 0 and json.loads(out) == [
        {"channel": "sim", "number": "12345", "account": "acme"}]
    listed = await api.ok("GET", "/admin/channels/sim/numbers", BOOTSTRAP)
    assert [n["number"] for n in listed["results"]] == ["12345"]
    for argv, code in ((("assign", "sim", "1", "nobody"), 1),
                       (("assign", "nosuch", "1", "acme"), 2),
                       (("assign", "sim", "1:2", "acme"), 2), (("unassign", "sim", "999"), 1),
                       (("unassign", "sim", "12345"), 0)):
        assert (await _cli(redis_url, capsys, "numbers", *argv))[0] == code, argv
    assert (await api.ok("GET", "/admin/channels/sim/numbers", BOOTSTRAP))["results"] == []


async def test_the_accounts_cli_sets_and_clears_a_parent(
    api: Api, limited: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await api.ok("POST", "/admin/keys", limited, json={"name": "b", "account": "bigcorp"})
    code, out, _ = await _cli(redis_url, capsys, "accounts", "set-parent", "bigcorp")
    assert code == 0
    shown = (await api.ok("GET", "/admin/accounts/bigcorp", BOOTSTRAP))["account"]
    assert "parentAccount" not in shown and shown["ownership"] == "Admin"
    assert (await api.ok("GET", "/admin/keys", limited))["results"] == []
    code, _, _ = await _cli(redis_url, capsys, "accounts", "set-parent", "bigcorp", "reseller")
    assert code == 0
    shown = (await api.ok("GET", "/admin/accounts/bigcorp", BOOTSTRAP))["account"]
    assert shown["parentAccount"] == "reseller"
    for argv, code in ((("nobody",), 1), (("bigcorp", "nosuch"), 2)):
        assert (await _cli(redis_url, capsys, "accounts", "set-parent", *argv))[0] == code
    code, out, _ = await _cli(redis_url, capsys, "keys", "list")
    header, *rows = out.splitlines()
    assert "ownership" in header
    assert [row.split()[3] for row in rows if row.split()[1] == "bigcorp"] == ["Admin"]
