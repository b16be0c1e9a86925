"""``smsgw smpp-server``: the listener, its sessions, and the tasks they share.

Any number of these processes may run behind a TCP load balancer: binds are counted in Redis,
messages go into the same store as HTTP sends, and receipts wait in Redis for whichever
process holds a receiver bind of their account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.exceptions
from aiohttp import web
from redis.asyncio import Redis

from gateway.metrics import GatewayMetrics, metrics_response
from gateway.smpp_server import concat
from gateway.smpp_server.router import ReceiptRouter
from gateway.smpp_server.session import ClientSession, new_wake
from gateway.validate import Rules
from worker.batcher import Batcher
from worker.config import Settings, SmppServerSettings
from worker.ids import new_id
from worker.jobs import worker_id
from worker.redisconn import redis_client
from worker.store import (
    REDIS_ERRORS,
    AcceptCall,
    AcceptResult,
    LimitExceeded,
    ReplicaAcks,
    Store,
)
from worker.store.smpp_server import SmppServerStore
from worker.supervise import supervise

log = logging.getLogger("smsgw.smpp_server")

SERVER_SYSTEM_ID = "smsgw"
_CLOSE_GRACE = 5.0


@dataclass(slots=True)
class ServerContext:
    """What every session of one process shares (owned by :class:`SmppServer`)."""

    settings: SmppServerSettings
    rules: Rules
    users: SmppServerStore
    metrics: GatewayMetrics
    accepts: Batcher[AcceptCall, list[AcceptResult] | LimitExceeded | Exception]
    router: ReceiptRouter
    idempotency_window_seconds: int
    store: Store
    system_id: str = SERVER_SYSTEM_ID
    sessions: set[ClientSession] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # attaching receivers

    @property
    def concat_wait_ms(self) -> int:
        """How long the parts of a message the client concatenated wait for the rest."""
        return int(self.settings.concat_wait_seconds * 1000)

    @staticmethod
    def new_id() -> str:
        """A new apiMessageId."""
        return new_id()

    def bound(self, session: ClientSession) -> None:
        """A session has bound: its lease is renewed from now on; a receiver gets receipts."""
        if session.can_receive:
            # attach() needs a round trip (the stream's group); receipts wait in Redis anyway
            task = asyncio.ensure_future(self._attach(session))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _attach(self, session: ClientSession) -> None:
        try:
            await self.router.attach(session)
        except REDIS_ERRORS as exc:
            log.warning("receipts for %s not attached (%s); its bind is closed", session.account,
                        exc)
            session.close_soon()

    async def unbound(self, session: ClientSession) -> None:
        """A bound session ended: no more receipts to it; its bind stops counting."""
        if session.can_receive:
            self.router.detach(session)
        if session.user is not None:
            try:
                await self.users.release_bind(session.user.system_id, session.bind_id)
            except REDIS_ERRORS:
                pass  # its lease lapses by itself


class SmppServer:
    """The SMPP front door of one process: ``start``, then ``stop``."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        srv = settings.smpp_server
        self.settings = settings
        self._redis = redis
        store = Store(redis, settings.retention_seconds,
                      ReplicaAcks(settings.replica_acks, settings.replica_ack_timeout_ms))
        users = SmppServerStore(redis)
        gw = settings.gateway
        self.ctx = ServerContext(
            settings=srv,
            rules=Rules.from_settings(settings),  # validated and routed as an HTTP send is
            users=users,
            metrics=GatewayMetrics(),
            accepts=Batcher(store.accept_within_many, max_size=64),
            router=ReceiptRouter(users, srv, worker_id()),
            idempotency_window_seconds=gw.idempotency_window_seconds,
            store=store,
        )
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._serving: set[asyncio.Task[object]] = set()  # one per connection
        self._metrics_site: web.AppRunner | None = None
        self.port = 0
        self.metrics_port = 0

    async def start(self, host: str, port: int, metrics_port: int | None = None) -> None:
        """Listen on host:port (0: a free port, then read ``self.port``), and serve GET
        /metrics on host:metrics_port unless it is None (0: a free one, ``self.metrics_port``)."""
        srv = self.settings.smpp_server
        self._server = await asyncio.start_server(self._serve, host, port,
                                                  ssl=srv.tls_context)
        self.port = self._server.sockets[0].getsockname()[1]
        if metrics_port is not None:
            await self._serve_metrics(host, metrics_port)
        try:
            await self.ctx.users.index_accounts()
        except REDIS_ERRORS as exc:  # serving does not need it: MO for older users waits
            log.warning("indexing the accounts with SMPP users failed (%s)", exc)
        router = self.ctx.router
        self._tasks = [
            asyncio.create_task(supervise("smpp receipts", router.run)),
            asyncio.create_task(supervise("smpp receipt retries", router.retry)),
            asyncio.create_task(supervise("smpp bind leases", self._renew_leases)),
            asyncio.create_task(supervise("smpp concatenated parts", self._sweep_parts)),
        ]

    async def stop(self) -> None:
        """Stop listening, end every session (after its submits in flight are answered)."""
        if self._server is not None:
            self._server.close()
        for session in list(self.ctx.sessions):
            session.close_soon()
        if self._serving:
            _, stuck = await asyncio.wait(list(self._serving), timeout=_CLOSE_GRACE)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
        if self.ctx.tasks:
            await asyncio.wait(list(self.ctx.tasks))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ctx.router.close()
        if self._server is not None:
            await self._server.wait_closed()
        if self._metrics_site is not None:
            await self._metrics_site.cleanup()

    async def _serve_metrics(self, host: str, port: int) -> None:
        metrics, token = self.ctx.metrics, self.settings.gateway.metrics_token

        async def view(request: web.Request) -> web.Response:
            return metrics_response(request, metrics, token)

        app = web.Application()
        app.router.add_get("/metrics", view)
        self._metrics_site = web.AppRunner(app, access_log=None)
        await self._metrics_site.setup()
        await web.TCPSite(self._metrics_site, host, port).start()
        self.metrics_port = self._metrics_site.addresses[0][1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = ClientSession(self.ctx, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self.ctx.sessions.add(session)
        self._serving.add(task)
        try:
            await session.run()
        finally:
            self.ctx.sessions.discard(session)
            self._serving.discard(task)

    async def _renew_leases(self) -> None:
        srv = self.settings.smpp_server
        lease_ms = int(srv.bind_lease_seconds * 1000)
        while True:
            await asyncio.sleep(srv.bind_lease_seconds / 3)
            binds = [(s.user.system_id, s.bind_id) for s in self.ctx.sessions
                     if s.user is not None]
            try:
                await self.ctx.users.renew_binds(binds, lease_ms)
            except REDIS_ERRORS as exc:
                log.warning("renewing bind leases failed (%s)", exc)


    async def _sweep_parts(self) -> None:
        """Send the messages whose parts stopped coming (every process sweeps; each message
        is made once), a few times per ``concat_wait_seconds``."""
        ctx = self.ctx
        period = min(max(ctx.settings.concat_wait_seconds / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(period)
            try:
                while True:
                    sent = await concat.sweep(ctx.store, ctx.rules, ctx.concat_wait_ms,
                                              new_wake)
                    for channel in sent:
                        ctx.metrics.accepted(channel, "smpp").inc()
                    if len(sent) < concat.SWEEP_BATCH:
                        break
            except (redis.exceptions.RedisError, *REDIS_ERRORS) as exc:  # a script error too
                log.warning("sweeping concatenated parts failed (%s)", exc)


@contextlib.asynccontextmanager
async def running(settings: Settings, host: str, port: int,
                  metrics_port: int | None = None) -> AsyncIterator[SmppServer]:
    """An SMPP server listening until the block ends (its Redis client closed after it)."""
    redis = redis_client(settings.redis_url)
    server = SmppServer(settings, redis)
    try:
        await server.start(host, port, metrics_port)
        yield server
    finally:
        await server.stop()
        await redis.aclose()


def run_smpp_server(settings: Settings, host: str, port: int,
                    metrics_port: int | None = None) -> int:
    """Serve until SIGINT or SIGTERM; prints ``smpp-server listening on HOST:PORT`` when
    ready."""
    from worker.eventloop import run

    run(_serve_until_signalled(settings, host, port, metrics_port))
    return 0


async def _serve_until_signalled(settings: Settings, host: str, port: int,
                                 metrics_port: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running(settings, host, port, metrics_port) as server:
        tls = " (TLS)" if settings.smpp_server.tls_context is not None else ""
        print(f"smpp-server listening on {host}:{server.port}{tls}", flush=True)
        await stop.wait()
