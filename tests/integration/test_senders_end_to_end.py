"""A message's sender end to end: sent over HTTP (the gateway) or SMPP (the SMPP server, an
smpplib client), stored in a real redis-server, submitted by an arq worker over real TCP to the
SMSC double with that source_addr and the TON/NPI of its kind; one without a sender keeps the
channel's; a long one is sent from the same sender in every part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.worker import Worker
from redis.asyncio import Redis

from gateway.auth import KeySpec, issue_key
from gateway.smpp_server.server import running
from gateway.smpp_server.users import SmppUserSpec, create_user
from tests.integration.support import send_messages, serving_gateway, stop_in_process_worker
from tests.integration.test_smpp_server import bound_esme, in_thread
from tests.smsc_double import ScriptedSmsc
from worker.config import Settings, settings_from_dict
from worker.jobs import arq_settings
from worker.senders import Senders
from worker.smpp.pdu import ShortMessage
from worker.store import Store
from worker.store.smpp_server import SmppServerStore

pytestmark = pytest.mark.integration

ESME_RINVSRCADR = 0x0A


def _settings(redis_url: str, smsc_port: int) -> Settings:
    return settings_from_dict(
        {"gateway": {"default_channel": "sim", "default_country_code": "27"},
         "channels": {"sim": {"port": smsc_port, "system_id": "smsgw", "password": "secret",
                              "source_addr": "Channel", "source_ton": 5, "source_npi": 0}},
         "smpp_server": {"auth_failures_free": 100}},
        {"REDIS_URL": redis_url}, source="test")


@pytest.fixture
async def smsc() -> AsyncIterator[ScriptedSmsc]:
    async with ScriptedSmsc() as double:
        yield double


@pytest.fixture
async def worker(redis_url: str, smsc: ScriptedSmsc) -> AsyncIterator[None]:
    arq = Worker(**arq_settings(_settings(redis_url, smsc.port)), handle_signals=False)
    task = asyncio.create_task(arq.async_run())
    yield
    await stop_in_process_worker(arq, task)


def _sent_from(smsc: ScriptedSmsc) -> dict[str, list[tuple[str, int, int]]]:
    """Per destination, the source address, TON and NPI of each submit_sm (part) to it."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for sm in smsc.submits:
        out.setdefault(sm.destination_addr, []).append(
            (sm.source_addr, sm.source_addr_ton, sm.source_addr_npi))
    return out


async def test_http_messages_reach_the_smsc_from_their_sender(
    redis_url: str, redis: Redis, smsc: ScriptedSmsc, worker: None,
) -> None:
    key, _ = await issue_key(Store(redis, 3600), KeySpec(
        name="t", account="acme", senders=Senders.of(["*"])))
    messages: list[dict[str, Any]] = [
        {"to": "+27820000001", "content": "alpha", "sender": "Acme"},
        {"to": "+27820000002", "content": "intl", "sender": "+447012345678"},
        {"to": "+27820000003", "content": "short code", "sender": "12345"},
        {"to": "+27820000004", "content": "none"},
        {"to": "+27820000005", "content": "long " * 60, "sender": "Acme"},  # 2 parts
    ]
    async with serving_gateway(_settings(redis_url, smsc.port)) as base:
        answers = await send_messages(base, key, *messages)
    assert [a["accepted"] for a in answers] == [True] * 5
    await smsc.wait_for(lambda: len(smsc.submits) >= 6, within=30)
    assert _sent_from(smsc) == {
        "27820000001": [("Acme", 5, 0)],
        "27820000002": [("447012345678", 1, 1)],  # international, without its '+'
        "27820000003": [("12345", 3, 0)],  # a short code: network specific
        "27820000004": [("Channel", 5, 0)],  # no sender: the channel's
        "27820000005": [("Acme", 5, 0), ("Acme", 5, 0)],  # every part from it
    }


async def _smpp_submit(port: int, password: str, source_addr: str) -> int:
    async with bound_esme(port, "transmitter", password) as esme:
        status, _ = await in_thread(esme.submit_one, "+27820000009", b"over smpp",
                                    source_addr=source_addr)
        return status


async def test_an_smpp_clients_source_addr_reaches_the_smsc_and_an_unallowed_one_is_refused(
    redis_url: str, redis: Redis, smsc: ScriptedSmsc, worker: None,
) -> None:
    password, _ = await create_user(SmppServerStore(redis), SmppUserSpec(
        system_id="acme1", account="acme", senders=Senders.of(["ACME", "4470*"])))
    async with running(_settings(redis_url, smsc.port), "127.0.0.1", 0) as server:
        assert await _smpp_submit(server.port, password, "OTHER") == ESME_RINVSRCADR
        assert await _smpp_submit(server.port, password, "447112345678") == ESME_RINVSRCADR
        assert await _smpp_submit(server.port, password, "ACME") == 0
        assert await _smpp_submit(server.port, password, "") == 0  # none: the channel's
    await smsc.wait_for(lambda: len(smsc.submits) >= 2, within=30)
    sent: list[ShortMessage] = smsc.submits
    assert sorted((sm.source_addr, sm.source_addr_ton, sm.source_addr_npi) for sm in sent) == [
        ("ACME", 5, 0), ("Channel", 5, 0)]
