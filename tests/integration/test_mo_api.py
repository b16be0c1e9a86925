"""Mobile-originated messages: posted, signed, to the inbound URL of the account that owns the
destination on the channel, and listed through the API for that account only. Real
redis-server, simulator, worker, gateway, webhooks service and a local aiohttp sink (the stack
of test_webhooks)."""

# The stack fixture is imported from test_webhooks and named in signatures, which ruff reads
# as a redefinition.
# ruff: noqa: F811
from __future__ import annotations

import asyncio

import pytest

from gateway.keys_cli import create_key
from tests.integration.test_webhooks import (  # noqa: F401  (fixtures used by name)
    Stack,
    hooks,
    stack,
    subscribed,
    until_all,
    verify,
)
from worker.smpp import pdu
from worker.store import EVENTS, Store

pytestmark = pytest.mark.integration

MO = "/communication/message/smpp/mo"


async def _receive_mo(stack: Stack, text: str) -> str:
    """Have the simulator send an MO message; its id once recorded."""
    message = pdu.ShortMessage(source_addr="27821234567", destination_addr="12345",
                               short_message=text.encode())
    async with subscribed(stack.redis, EVENTS) as events:
        await stack.sim.wait_bound("smsgw", 1)
        stack.sim.send_mo("smsgw", message)
        async for event in events:
            if event.endswith(" mo"):
                return event.split()[0]
    raise AssertionError("unreachable")


async def _own_destination(stack: Stack, account: str) -> None:
    status, reply = await stack.call("PUT", "/admin/channels/sim/numbers/12345", stack.admin,
                                     {"account": account})
    assert status == 200, reply


async def test_an_mo_message_is_posted_signed_to_the_inbound_url_and_listed(
    stack: Stack,
) -> None:
    sink = await stack.sink()
    await _own_destination(stack, "acme")
    status, reply = await stack.call("PUT", "/admin/accounts/acme/inbound/sim", stack.admin,
                                     {"url": sink.url})
    assert status == 200 and reply["webhooks"]["inboundUrls"] == [
        {"channel": "sim", "url": sink.url}]
    secret = reply["secret"]
    async with asyncio.timeout(30):
        mo_id = await _receive_mo(stack, "hello gateway")
        (hit,) = await sink.wait_for(1, answered=200)

    assert verify(secret, hit)
    event = hit.json
    assert event["type"] == "message.inbound" and event["eventId"] == f"{mo_id}.mo"
    assert (event["moMessageId"], event["channel"], event["text"]) == (mo_id, "sim",
                                                                      "hello gateway")
    assert (event["source"], event["destination"]) == ("27821234567", "12345")

    status, listed = await stack.call("GET", f"{MO}?channel=sim", stack.keys["acme"])
    assert status == 200
    (mo,) = listed["messages"]
    assert (mo["moMessageId"], mo["text"], mo["source"]) == (mo_id, "hello gateway",
                                                            "27821234567")
    assert mo["receivedAt"]


async def test_an_mo_message_is_listed_only_for_the_account_that_owns_its_destination(
    stack: Stack,
) -> None:
    sink = await stack.sink()
    await _own_destination(stack, "acme")
    for account in ("acme", "beta"):  # beta's URL for the channel gets nothing of acme's
        status, _ = await stack.call("PUT", f"/admin/accounts/{account}/inbound/sim",
                                     stack.admin, {"url": sink.url})
        assert status == 200
    async with asyncio.timeout(30):
        mo_id = await _receive_mo(stack, "for acme")
        await sink.wait_for(1, answered=200)

    status, listed = await stack.call("GET", MO, stack.keys["beta"])
    assert (status, listed["messages"]) == (200, [])
    status, listed = await stack.call("GET", f"{MO}?account=acme", stack.keys["beta"])
    assert status == 404  # another tenant's account looks unknown
    status, listed = await stack.call("GET", f"{MO}?channel=sim", stack.admin)
    assert status == 200 and [m["moMessageId"] for m in listed["messages"]] == [mo_id]
    assert listed["messages"][0]["account"] == "acme"
    narrow = await create_key(Store(stack.redis, 3600), name="narrow", account="acme",
                              roles=frozenset({"Client"}), channels=frozenset({"other"}))
    status, _ = await stack.call("GET", f"{MO}?channel=sim", narrow)
    assert status == 403
    status, listed = await stack.call("GET", MO, narrow)
    assert (status, listed["messages"]) == (200, [])  # its key may not use channel sim


async def test_an_inbound_url_needs_a_configured_channel(stack: Stack) -> None:
    status, reply = await stack.call("PUT", "/admin/accounts/acme/inbound/nosuch", stack.admin,
                                     {"url": "http://127.0.0.1:9/x"})
    assert status == 400
    assert reply["ResponseStatus"]["Errors"][0]["FieldName"] == "channel"
