"""No exception ends the worker's long-lived tasks (issue 11, item 1), and a worker whose
heartbeat cannot be written submits nothing (its claims could be taken over: sent twice).

Faults are injected with store doubles (a real Store, a real redis-server, one method made to
fail); the simulator over TCP judges what went on the wire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
import redis.exceptions
from redis.asyncio import Redis

from tests.integration.test_worker_behaviour import (
    ACCOUNT,
    CHANNEL,
    accept,
    simulator,
    transitions,
    worker,
)
from worker.bindcap import BindLeases
from worker.config import Channel, settings_from_dict
from worker.smpp import pdu
from worker.smpp.pool import ChannelPool
from worker.smpp.session import Session
from worker.store import Claimed, Store

pytestmark = pytest.mark.integration

READONLY = "READONLY You can't write against a read only replica."
(ACCOUNT_USER,) = ACCOUNT
WAIT = 10.0  # bound on any test's waiting; each takes well under a second
OOM = "OOM command not allowed when used memory > 'maxmemory'."


class DueFailsOnce(Store):
    """A store whose first look for due messages raises an error nobody expects."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, 3600)
        self.failed = asyncio.Event()

    async def due(self, channels: Sequence[str], limit: int) -> list[str]:
        if not self.failed.is_set():
            self.failed.set()
            raise RuntimeError("injected into one reaper pass")
        return await super().due(channels, limit)


class RefusedHeartbeats(Store):
    """A store whose heartbeat writes are refused (a Redis error reply) while ``refusing``;
    ``refused`` and ``written`` count the attempts, ``claims`` the calls to claim."""

    def __init__(self, redis: Redis, error: str, refusals: int | None) -> None:
        super().__init__(redis, 3600)
        self._error = error
        self.refusals_left = refusals  # None: until told otherwise
        self.refused = 0
        self.written = 0
        self.claims = 0
        self.changed = asyncio.Condition()

    async def heartbeat(self, worker: str, ttl_ms: int) -> None:
        async with self.changed:
            self.changed.notify_all()
            if self.refusals_left is None or self.refusals_left > 0:
                if self.refusals_left is not None:
                    self.refusals_left -= 1
                self.refused += 1
                raise redis.exceptions.ResponseError(self._error)
        await super().heartbeat(worker, ttl_ms)
        async with self.changed:
            self.written += 1
            self.changed.notify_all()

    async def claim(self, ids: Sequence[str], *, worker: str, lease_ms: int,
                    served: Sequence[str]) -> list[Claimed]:
        self.claims += 1
        return await super().claim(ids, worker=worker, lease_ms=lease_ms, served=served)


async def test_an_exception_in_one_reaper_pass_does_not_stop_the_next(
    redis_url: str, redis: Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    store = DueFailsOnce(redis)
    async with (simulator() as sim, transitions(redis_url) as until_final,
                worker(store, sim.port, reap_interval=0.05), asyncio.timeout(WAIT)):
        await store.failed.wait()
        # No wake-up job runs here: only a later reaper pass can send it.
        (api_id,) = await accept(store, [("27820000001", "after the crash")])
        assert await until_final([api_id]) == {api_id: "delivered"}
    assert len(sim.submits) == 1
    (crash,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert crash.getMessage().startswith("reaper crashed") and crash.exc_info is not None


@pytest.mark.parametrize("error", [READONLY, OOM])
async def test_the_heartbeat_goes_on_beating_after_a_redis_error_reply(
    redis: Redis, error: str, caplog: pytest.LogCaptureFixture,
) -> None:
    store = RefusedHeartbeats(redis, error, refusals=1)
    async with simulator() as sim, worker(store, sim.port, first_beat=False), asyncio.timeout(WAIT):
        async with store.changed:
            await store.changed.wait_for(lambda: store.written >= 2)
    assert store.refused == 1
    assert any(r.getMessage().startswith("heartbeat crashed") and r.exc_info is not None
               for r in caplog.records if r.levelno == logging.ERROR)


async def test_a_worker_whose_heartbeat_is_not_written_submits_nothing_until_it_is(
    redis_url: str, redis: Redis,
) -> None:
    # Its heartbeat key is missing, so any claim it made could be taken over by another worker
    # at once and the message submitted twice: it must claim nothing and submit nothing.
    store = RefusedHeartbeats(redis, READONLY, refusals=None)
    async with (simulator() as sim, transitions(redis_url) as until_final,
                worker(store, sim.port, reap_interval=0.05, first_beat=False) as dispatcher,
                asyncio.timeout(WAIT)):
        (api_id,) = await accept(store, [("27820000001", "held back")])
        async with store.changed:  # beats refused for a while, the reaper running meanwhile
            await store.changed.wait_for(lambda: store.refused >= 3)
        assert await dispatcher.drain_due() == 0  # a wake-up job's path: refused alike
        assert await dispatcher.send([api_id]) == 0  # and an old job's, naming its messages
        assert store.claims == 0 and sim.submits == []
        (record,) = await store.get([api_id])
        assert record is not None and record.status == "queued"

        store.refusals_left = 0  # Redis takes writes again: the next beat is written
        assert await until_final([api_id]) == {api_id: "delivered"}
    assert len(sim.submits) == 1


class RefusingLeases(BindLeases):
    """The real bind slots in Redis; the first ``refusals`` takes meet an error reply."""

    def __init__(self, redis: Redis, refusals: int) -> None:
        super().__init__(Store(redis, 60), "test")
        self.refusals_left = refusals

    async def acquire(self, channel: str, kind: str, slots: int) -> int | None:
        if self.refusals_left:
            self.refusals_left -= 1
            raise redis.exceptions.ResponseError(OOM)
        return await super().acquire(channel, kind, slots)


async def no_deliveries(sm: pdu.ShortMessage) -> int:
    return pdu.ESME_ROK


def one_bind(port: int) -> Channel:
    (user,) = ACCOUNT
    return settings_from_dict(
        {"channels": {CHANNEL: {"port": port, "system_id": user, "password": ACCOUNT[user],
                                "binds": 1, "reconnect_min_seconds": 0.05,
                                "reconnect_max_seconds": 0.2}}},
        {}, source="test").channels[CHANNEL]


async def test_a_bind_whose_supervisor_met_an_unexpected_error_binds_again(
    redis: Redis,
) -> None:
    leases = RefusingLeases(redis, refusals=1)
    async with simulator() as sim, asyncio.timeout(WAIT):
        pool = ChannelPool(one_bind(sim.port), no_deliveries, "test", leases)
        pool.start()
        try:
            assert await pool.wait_ready(WAIT)
        finally:
            await pool.stop(1.0)
    assert leases.refusals_left == 0


async def test_a_session_whose_timer_crashed_is_dropped_and_bound_again(
    monkeypatch: pytest.MonkeyPatch, redis: Redis,
) -> None:
    # Without its response timer a session would hold requests that are never answered for
    # ever; it cannot go on, so it is dropped and the pool binds afresh.
    expire = Session._expire
    crashed = asyncio.Event()

    def expire_crashing_once(self: Session, now: float) -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("a bug in the response timer")
        expire(self, now)

    async with simulator() as sim, asyncio.timeout(WAIT):
        pool = ChannelPool(one_bind(sim.port), no_deliveries, "test",
                           RefusingLeases(redis, refusals=0))
        pool.start()
        try:
            assert await pool.wait_ready(WAIT)
            monkeypatch.setattr(Session, "_expire", expire_crashing_once)
            await crashed.wait()
            await sim.wait_bound(ACCOUNT_USER, 0)
            await sim.wait_bound(ACCOUNT_USER, 1)
            assert pool.reconnects == 1
        finally:
            await pool.stop(1.0)
