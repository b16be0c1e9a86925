"""An SMPP client's submit_sm is routed as an HTTP send is: by destination, by the user's
account (or its parent), with the user's channels restricting the pick; a destination no
route can send is refused at submit time. Real redis-server, real SMPP over TCP (smpplib)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.smpp_server.server import running
from gateway.smpp_server.users import SmppUserSpec, create_user
from tests.integration.test_routing_api import CONFIG as ROUTES
from tests.integration.test_smpp_server import add_user, bound_esme, in_thread
from worker.config import settings_from_dict
from worker.smpp.pdu import ESME_RINVDSTADR
from worker.store import Store, msg_key
from worker.store.smpp_server import SmppServerStore

pytestmark = pytest.mark.integration

# The HTTP routing tests' routes (vip by account, za by prefix, fr by country), served over SMPP
CONFIG: dict[str, Any] = {**ROUTES, "smpp_server": {"auth_failures_free": 100}}


async def _submits(redis_url: str, password: str, *tos: str,
                   system_id: str = "acme1") -> list[tuple[int, str]]:
    settings = settings_from_dict(CONFIG, {"REDIS_URL": redis_url}, source="test.toml")
    async with running(settings, "127.0.0.1", 0) as srv, \
            bound_esme(srv.port, "transceiver", password, system_id) as esme:
        return [await in_thread(esme.submit_one, to, b"hi") for to in tos]


async def test_a_submit_goes_where_its_route_sends_and_the_record_names_the_route(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis)
    (za, fr) = await _submits(redis_url, password, "+27820000001", "+33612345678")
    assert za[0] == fr[0] == 0
    records = await Store(redis, 3600).get([za[1], fr[1]])
    assert [(r.fields["channel"], r.fields["route"], r.fields["chain"])
            for r in records if r is not None] == [("a", "za", "a,b"), ("b", "fr", "b")]


async def test_a_route_for_the_users_account_takes_its_submits(
    redis_url: str, redis: Redis,
) -> None:
    password, _ = await create_user(SmppServerStore(redis),
                                    SmppUserSpec(system_id="vip1", account="vip"))
    [(status, api_id)] = await _submits(redis_url, password, "+27820000001", system_id="vip1")
    [record] = await Store(redis, 3600).get([api_id])
    assert status == 0 and record is not None and record.fields["channel"] == "c"


async def test_a_destination_no_route_can_send_is_refused_and_nothing_is_stored(
    redis_url: str, redis: Redis,
) -> None:
    password = await add_user(redis, channels=frozenset({"a"}))
    [(status, _)] = await _submits(redis_url, password, "+33612345678")  # fr: only "b"
    assert status == ESME_RINVDSTADR
    assert not await redis.keys(msg_key("*"))
