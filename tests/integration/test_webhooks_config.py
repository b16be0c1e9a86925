"""Webhook settings through the admin API and ``smsgw accounts``: roles, URL rules, secrets."""

# The stack fixture is imported from test_webhooks and named in signatures, which ruff reads
# as a redefinition.
# ruff: noqa: F811
from __future__ import annotations

import json

import aiohttp
import pytest

from gateway.accounts_cli import run_accounts
from gateway.cli import build_parser
from gateway.keys_cli import create_key
from gateway.operations import ADMIN_OPERATIONS
from gateway.webhook_config import InvalidWebhook, check_url
from tests.integration.test_webhooks import Stack, hooks, stack  # noqa: F401
from worker.config import WebhookSettings, settings_from_dict
from worker.store import Store, WebhookStore

pytestmark = pytest.mark.integration

OWN = ["127.0.0.1:8080", "gw.example.com:443"]
FINAL_ONLY = ["delivered", "undelivered", "expired", "rejected", "failed"]


# URL -> the address it names: loopback, cloud metadata, a private network.
PRIVATE_URLS = {"http://127.0.0.1:9/x": "127.0.0.1", "http://[::1]/x": "::1",
                "http://169.254.169.254/x": "169.254.169.254", "http://10.0.0.1/x": "10.0.0.1"}


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/smsgw", "http://8.8.8.8:9000/cb", "https://[2606:4700::1111]/cb",
    "https://shop.example/api/sms-callback",  # /api/ is fine when it is not one of ours
    "http://localhost:9000/cb",  # a name: not resolved now, its addresses are checked at delivery
])
def test_http_and_https_receivers_are_accepted(url: str) -> None:
    assert check_url(url, own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                     allow_private_networks=False) == url


@pytest.mark.parametrize("url", [
    *PRIVATE_URLS, "http://0.0.0.0/x", "http://172.16.0.1/x", "http://192.168.1.1/x",
    "http://100.64.0.1/x", "https://[fd00::1]:8443/x", "http://[fe80::1%25eth0]/x",
    "http://[::ffff:127.0.0.1]/x", "http://127.1/x", "http://2130706433/x", "http://0x7f.1/x",
    "http://224.0.0.1/x",
])
def test_ip_literals_that_are_not_public_are_refused_unless_private_networks_are_allowed(
    url: str,
) -> None:
    with pytest.raises(InvalidWebhook) as refused:
        check_url(url, own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                  allow_private_networks=False)
    assert refused.value.field == "url"
    assert refused.value.message.startswith("'url' must point at a public address, not ")
    assert check_url(url, own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                     allow_private_networks=True) == url


def test_a_host_that_looks_numeric_but_is_no_address_is_refused() -> None:
    with pytest.raises(InvalidWebhook, match=r"not a valid IP address: 1\.2\.3\.4\.5$"):
        check_url("http://1.2.3.4.5/x", own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                  allow_private_networks=False)


@pytest.mark.parametrize("url", [
    "ftp://hooks.example.com/x", "file:///etc/passwd", "javascript:alert(1)", "http:///nohost",
    "https://user:pw@hooks.example.com/", "http://127.0.0.1:8080/anything",
    "https://GW.example.com/hooks", "https://other.example/admin/keys",
    "https://other.example//ADMIN", "https://other.example/%61dmin/keys",
    "https://other.example/json/reply/CreateApiKey", "https://other.example/api/rotateapikey",
    "https://other.example/json/reply/CreateSmppUser",  # every admin operation, SMPP users too
    "http://[::1", "https://h.example/" + "x" * 2000,
])
def test_urls_that_are_not_http_or_aim_at_the_gateway_admin_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhook):
        check_url(url, own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                  allow_private_networks=True)


@pytest.mark.parametrize("url", [
    "http://h.example/./admin/keys", "http://h.example/x/../admin/keys",
    "http://h.example/x/%2e%2e/admin/keys", "http://h.example/%2E/admin",
    "http://h.example/a/b/../../admin", "http://h.example/..//admin/keys",
    "http://h.example/x/.%2E/json/reply/CreateApiKey", "http://h.example/api/x/../RotateApiKey",
])
def test_dot_segments_cannot_carry_a_webhook_to_the_admin_paths(url: str) -> None:
    with pytest.raises(InvalidWebhook, match="admin endpoints"):
        check_url(url, own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                  allow_private_networks=True)


@pytest.mark.parametrize("url", ["http://h.example/admin/../hooks", "http://h.example/.admin",
                                 "http://h.example/x/..admin"])
def test_dot_segments_that_lead_away_from_the_admin_paths_are_accepted(url: str) -> None:
    assert check_url(url, own_origins=OWN, admin_operations=ADMIN_OPERATIONS,
                     allow_private_networks=True) == url


async def test_an_admin_sets_a_callback_and_the_secret_is_shown_only_when_generated(
    stack: Stack,
) -> None:
    path = "/admin/accounts/acme/callback"
    status, first = await stack.call("PUT", path, stack.admin, {"url": "http://127.0.0.1:9/a"})
    assert status == 200 and first["secret"].startswith("whsec_")
    assert first["webhooks"] == {"account": "acme", "callbackUrl": "http://127.0.0.1:9/a",
                                 "inboundUrls": [], "hasSecret": True,
                                 "events": ["submitted", *FINAL_ONLY, "unknown"],
                                 "maxBatch": 1, "maxBatchDelayMs": 100}
    status, again = await stack.call("POST", path, stack.admin, {"url": "http://127.0.0.1:9/b"})
    assert status == 200 and again.get("secret") is None
    status, rotated = await stack.call("PUT", path, stack.admin,
                                       {"url": "http://127.0.0.1:9/b", "rotateSecret": True})
    assert rotated["secret"] not in (None, first["secret"])
    status, shown = await stack.call("GET", "/admin/accounts/acme/webhooks", stack.admin)
    assert status == 200 and "secret" not in {k for k, v in shown.items() if v}
    assert shown["webhooks"]["callbackUrl"] == "http://127.0.0.1:9/b"
    status, _ = await stack.call("DELETE", path, stack.admin)
    status, shown = await stack.call("GET", "/json/reply/GetAccountWebhooks?account=acme",
                                     stack.admin)
    assert status == 200 and shown["webhooks"].get("callbackUrl") is None


async def test_a_callback_at_the_gateway_itself_is_refused(stack: Stack) -> None:
    status, reply = await stack.call("PUT", "/admin/accounts/acme/callback", stack.admin,
                                     {"url": stack.base + "/hooks"})
    assert status == 400 and reply["ResponseStatus"]["Errors"][0]["FieldName"] == "url"


async def test_roles_decide_whose_webhooks_a_key_manages(stack: Stack) -> None:
    store = Store(stack.redis, 3600)
    partner = await create_key(store, name="p", account="reseller",
                               roles=frozenset({"Partner"}), channels=None)
    await create_key(store, name="kid", account="kid", parent_account="reseller",
                     roles=frozenset({"Client"}), channels=None)
    body = {"url": "http://127.0.0.1:9/cb"}
    assert (await stack.call("PUT", "/admin/accounts/kid/callback", partner, body))[0] == 200
    assert (await stack.call("PUT", "/admin/accounts/reseller/callback", partner,
                             body))[0] == 200
    assert (await stack.call("PUT", "/admin/accounts/acme/callback", partner, body))[0] == 404
    assert (await stack.call("PUT", "/admin/accounts/acme/callback", stack.keys["acme"],
                             body))[0] == 403
    assert (await stack.call("PUT", "/admin/accounts/nobody/callback", stack.admin,
                             body))[0] == 404
    status, dead = await stack.call("GET", "/admin/webhooks/dead", partner)
    assert (status, dead["results"]) == (200, [])


@pytest.mark.parametrize("hooks", [WebhookSettings()])  # production's: private refused
async def test_the_api_refuses_webhook_urls_at_private_addresses_and_stores_nothing(
    stack: Stack,
) -> None:
    for url, address in PRIVATE_URLS.items():
        for path in ("/admin/accounts/acme/callback", "/admin/accounts/acme/inbound/sim"):
            status, reply = await stack.call("PUT", path, stack.admin, {"url": url})
            assert status == 400, (path, url)
            (error,) = reply["ResponseStatus"]["Errors"]
            assert (error["FieldName"], error["Message"]) == (
                "url", f"'url' must point at a public address, not {address}")
    async with aiohttp.ClientSession() as http, http.put(
            stack.base + "/admin/accounts/acme/callback", json={"url": "http://10.0.0.1/x"},
            headers={"Authorization": f"Bearer {stack.admin}", "Accept": "application/xml"},
    ) as resp:
        assert (resp.status, resp.content_type) == (400, "application/xml")
        xml = await resp.text()
    assert "<d2p1:FieldName>url</d2p1:FieldName>" in xml and "not 10.0.0.1" in xml
    hooks = WebhookStore(stack.redis)
    targets = await hooks.targets("acme")
    assert targets is not None
    assert (targets.callback_url, targets.secret, dict(targets.inbound)) == ("", "", {})
    assert "acme" not in await hooks.hooked_accounts()


async def test_the_api_accepts_private_addresses_when_the_config_allows_them(
    stack: Stack,
) -> None:
    assert stack.settings.webhooks.allow_private_networks
    for url in PRIVATE_URLS:
        status, reply = await stack.call("PUT", "/admin/accounts/acme/callback", stack.admin,
                                         {"url": url})
        assert (status, reply["webhooks"]["callbackUrl"]) == (200, url)


async def _accounts(redis_url: str, capsys: pytest.CaptureFixture[str], *argv: str,
                    allow_private_networks: bool = False) -> tuple[int, str, str]:
    capsys.readouterr()
    args = build_parser().parse_args(["accounts", *argv])
    settings = settings_from_dict(
        {"channels": {"sim": {}}, "webhooks": {"allow_private_networks": allow_private_networks}},
        {"REDIS_URL": redis_url}, "test")
    code = await run_accounts(args, settings)
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_accounts_cli_sets_shows_and_clears_webhook_urls(
    stack: Stack, capsys: pytest.CaptureFixture[str],
) -> None:
    url = stack.settings.redis_url
    code, out, _ = await _accounts(url, capsys, "set-callback", "acme", "https://h.example/cb")
    assert code == 0 and out.strip().startswith("whsec_")  # the secret alone on stdout
    code, out, _ = await _accounts(url, capsys, "set-inbound", "acme", "sim",
                                   "https://h.example/mo")
    assert (code, out) == (0, "")  # the account already has its secret
    code, out, _ = await _accounts(url, capsys, "show", "acme", "--json")
    assert code == 0 and '"sim": "https://h.example/mo"' in out and "whsec_" not in out
    assert (await _accounts(url, capsys, "set-callback", "acme", "ftp://h.example"))[0] == 2
    assert (await _accounts(url, capsys, "set-inbound", "acme", "nosuch",
                            "https://h.example"))[0] == 2
    assert (await _accounts(url, capsys, "set-callback", "ghost", "https://h.example"))[0] == 1
    assert (await _accounts(url, capsys, "replay", "acme", "not-an-id"))[0] == 2
    code, _, err = await _accounts(url, capsys, "clear-callback", "acme")
    assert code == 0 and "cleared" in err
    code, out, _ = await _accounts(url, capsys, "dead-letters", "acme", "--json")
    assert (code, out.strip()) == (0, "[]")


async def test_the_accounts_cli_refuses_private_addresses_unless_the_config_allows_them(
    stack: Stack, capsys: pytest.CaptureFixture[str],
) -> None:
    url = stack.settings.redis_url
    code, out, err = await _accounts(url, capsys, "set-callback", "acme", "http://10.0.0.1/x")
    assert (code, out) == (2, "")
    assert "'url' must point at a public address, not 10.0.0.1" in err
    code, _, _ = await _accounts(url, capsys, "set-inbound", "acme", "sim", "http://[::1]/mo")
    assert code == 2
    targets = await WebhookStore(stack.redis).targets("acme")
    assert targets is not None and (targets.callback_url, dict(targets.inbound)) == ("", {})

    code, out, _ = await _accounts(url, capsys, "set-callback", "acme", "http://10.0.0.1/x",
                                   allow_private_networks=True)
    assert code == 0 and out.strip().startswith("whsec_")
    targets = await WebhookStore(stack.redis).targets("acme")
    assert targets is not None and targets.callback_url == "http://10.0.0.1/x"


async def test_an_account_chooses_its_events_and_batches_and_its_view_shows_them(
    stack: Stack,
) -> None:
    path = "/admin/accounts/acme/callback"
    status, default = await stack.call("PUT", path, stack.admin, {"url": "http://127.0.0.1:9/a"})
    assert status == 200
    assert {k: default["webhooks"][k] for k in ("events", "maxBatch", "maxBatchDelayMs")} == {
        "events": ["submitted", *FINAL_ONLY, "unknown"], "maxBatch": 1, "maxBatchDelayMs": 100}
    status, chosen = await stack.call("PUT", path, stack.admin, {
        "url": "http://127.0.0.1:9/a", "events": ["failed", "delivered", "delivered"],
        "maxBatch": 100, "maxBatchDelayMs": 250})
    assert status == 200, chosen
    expected = {"events": ["delivered", "failed"], "maxBatch": 100, "maxBatchDelayMs": 250}
    assert {k: chosen["webhooks"][k] for k in expected} == expected
    # A new URL (or secret) alone keeps the account's choices.
    status, _ = await stack.call("PUT", path, stack.admin, {"url": "http://127.0.0.1:9/b",
                                                            "rotateSecret": True})
    status, shown = await stack.call("GET", "/admin/accounts/acme/webhooks", stack.admin)
    assert status == 200 and {k: shown["webhooks"][k] for k in expected} == expected
    assert shown["webhooks"]["callbackUrl"] == "http://127.0.0.1:9/b"
    # "final" names every final status; clearing the callback forgets the choices.
    status, final = await stack.call("PUT", path, stack.admin, {"url": "http://127.0.0.1:9/b",
                                                                "events": ["final"]})
    assert final["webhooks"]["events"] == FINAL_ONLY
    await stack.call("DELETE", path, stack.admin)
    status, shown = await stack.call("GET", "/admin/accounts/acme/webhooks", stack.admin)
    assert (shown["webhooks"]["events"], shown["webhooks"]["maxBatch"]) == (
        default["webhooks"]["events"], 1)


@pytest.mark.parametrize(("extra", "field"), [
    ({"maxBatch": 0}, "maxBatch"), ({"maxBatch": 1001}, "maxBatch"),
    ({"maxBatch": "ten"}, "maxBatch"), ({"maxBatchDelayMs": -1}, "maxBatchDelayMs"),
    ({"maxBatchDelayMs": 60_001}, "maxBatchDelayMs"), ({"events": []}, "events"),
    ({"events": ["sent"]}, "events"), ({"events": "delivered"}, "events"),
    ({"events": ["queued"]}, "events"),
])
async def test_batch_and_event_choices_out_of_range_are_refused_naming_the_field(
    stack: Stack, extra: dict[str, object], field: str,
) -> None:
    status, reply = await stack.call("PUT", "/admin/accounts/acme/callback", stack.admin,
                                     {"url": "http://127.0.0.1:9/a", **extra})
    assert status == 400, reply
    assert reply["ResponseStatus"]["Errors"][0]["FieldName"] == field
    targets = await WebhookStore(stack.redis).targets("acme")
    assert targets is not None and targets.callback_url == ""  # nothing stored


async def test_the_accounts_cli_sets_and_shows_events_and_batches(
    stack: Stack, capsys: pytest.CaptureFixture[str],
) -> None:
    url = stack.settings.redis_url
    code, out, _ = await _accounts(url, capsys, "set-callback", "acme", "https://h.example/cb",
                                   "--events", "final", "--max-batch", "50",
                                   "--max-batch-delay-ms", "20")
    assert code == 0 and out.strip().startswith("whsec_")
    code, out, _ = await _accounts(url, capsys, "show", "acme", "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["events"], shown["maxBatch"], shown["maxBatchDelayMs"]) == (
        FINAL_ONLY, 50, 20)
    code, _, err = await _accounts(url, capsys, "set-callback", "acme", "https://h.example/cb",
                                   "--max-batch", "0")
    assert code == 2 and "'maxBatch'" in err
    code, _, err = await _accounts(url, capsys, "set-callback", "acme", "https://h.example/cb",
                                   "--events", "delivered,sent")
    assert code == 2 and "'events'" in err
