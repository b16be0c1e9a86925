"""The aiohttp application factory: state, resources, middlewares, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway import openapi
from gateway.auth import ensure_bootstrap_admin
from gateway.context import GATEWAY, Gateway
from gateway.errors import error_answer
from gateway.keycache import GatewayStore
from gateway.metrics import (
    METRICS,
    GatewayMetrics,
    metrics_middleware,
    metrics_view,
)
from gateway.respond import render_error
from gateway.validate import Rules
from gateway.views import (
    accounts,
    admin,
    health,
    metadata,
    mo,
    native,
    numbers,
    routes,
    send,
    smpp_users,
    status,
    status_page,
    webhooks,
)
from worker.config import Settings
from worker.redisconn import redis_client
from worker.store import ReplicaAcks

SEND_PATH = "/communication/message/smpp/sms"
# A GET status lookup lists up to 1,000 ids in its query (26 characters and a comma, '%2C' as
# some clients send it, each): aiohttp's default of 8,190 bytes per request line holds ~300.
MAX_REQUEST_LINE = 32 * 1024
log = logging.getLogger("smsgw.gateway")


def create_app(settings: Settings) -> web.Application:
    """A gateway application for ``settings``; Redis is opened and closed with the app."""
    metrics = GatewayMetrics()
    app = web.Application(
        middlewares=[metrics_middleware(metrics, error_answer(render_error))],
        client_max_size=settings.gateway.max_body_bytes,
        handler_args={"max_line_size": MAX_REQUEST_LINE},
    )
    app[METRICS] = metrics
    app.cleanup_ctx.append(_resources(settings))
    app.cleanup_ctx.append(_bootstrap_admin(settings.gateway.admin_bootstrap_key))
    _routes(app)
    return app


def _resources(settings: Settings):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        redis = redis_client(settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
                             health_check_interval=30)
        app[GATEWAY] = Gateway(
            settings=settings, redis=redis,
            store=GatewayStore(app[METRICS], redis, settings.retention_seconds, ReplicaAcks(
                settings.replica_acks, settings.replica_ack_timeout_ms)),
            rules=Rules.from_settings(settings),
        )
        yield
        await redis.aclose()

    return ctx


def _bootstrap_admin(secret: str) -> Callable[[web.Application], AsyncIterator[None]]:
    # SMSGW_BOOTSTRAP_ADMIN_KEY, read once at start: a deployment's first Admin key.
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if secret and await ensure_bootstrap_admin(app[GATEWAY].store, secret):
            log.info("bootstrap Admin key created from SMSGW_BOOTSTRAP_ADMIN_KEY")
        yield

    return ctx


def _routes(app: web.Application) -> None:
    r = app.router
    for suffix in ("", ".json", ".xml"):
        r.add_post(SEND_PATH + suffix, send.send)
        r.add_get(SEND_PATH + suffix, status.by_client_id)
    r.add_get(SEND_PATH + "/status", status.batch)
    r.add_post(SEND_PATH + "/status", status.batch)
    r.add_get(SEND_PATH + "/{apiMessageId}", status.by_api_id)
    for prefix in ("/api/", "/json/reply/", "/xml/reply/"):
        r.add_post(prefix + "SendSMPPSmsRequest", send.send)
        r.add_route("*", prefix + "GetSMPPSmsStatus", status.by_api_id)
        r.add_route("*", prefix + "FindSMPPSmsStatus", status.by_client_id)
        r.add_route("*", prefix + "GetSMPPSmsStatusBatch", status.batch)
    admin.add_routes(r)
    smpp_users.add_routes(r)
    status_page.add_routes(r)
    webhooks.add_routes(r)
    mo.add_routes(r)
    numbers.add_routes(r)
    routes.add_routes(r)
    accounts.add_routes(r)
    native.add_routes(r)
    metadata.add_routes(r)
    r.add_get("/openapi.json", openapi.openapi_json)
    r.add_get("/docs", openapi.docs_page)
    r.add_get("/docs/{asset}", openapi.docs_asset)
    r.add_get("/health/live", health.live)
    r.add_get("/health/ready", health.ready)
    r.add_get("/metrics", metrics_view)
