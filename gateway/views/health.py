"""Liveness and readiness of the gateway."""

from __future__ import annotations

from aiohttp import web

from gateway.context import GATEWAY

READY_TIMEOUT = 2.0


async def live(request: web.Request) -> web.Response:
    """The process answers."""
    return web.json_response({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    """Ready when Redis answers; otherwise 503 with the reason."""
    try:
        await request.app[GATEWAY].redis.ping()
    except Exception as exc:  # any failure means not ready; the reason is reported
        return web.json_response({"status": "not ready", "reason": f"redis: {exc}"}, status=503)
    return web.json_response({"status": "ready"})
