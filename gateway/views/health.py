"""Liveness and readiness of the gateway."""

from __future__ import annotations

from aiohttp import web

from gateway.context import GATEWAY
from worker.health import redis_reason


async def live(request: web.Request) -> web.Response:
    """The process answers."""
    return web.json_response({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    """Ready when Redis answers a PING in time; otherwise 503 with the reason."""
    reason = await redis_reason(request.app[GATEWAY].redis)
    if reason:
        return web.json_response({"status": "not ready", "reason": reason}, status=503)
    return web.json_response({"status": "ready"})
