"""GET /admin/routes (GetRoutes): the configured routes, in order. Admin keys only: routes
name every channel and the accounts routed apart."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import authenticate
from gateway.context import GATEWAY
from gateway.dto import RoutesResponse
from gateway.respond import respond
from gateway.routes import info

ROUTES_PATH = "/admin/routes"
ADMIN_ONLY = frozenset({"Admin"})


async def list_routes(request: web.Request) -> web.Response:
    """GetRoutes."""
    gw = request.app[GATEWAY]
    principal = await authenticate(gw.store, request.headers)
    principal.require_any(ADMIN_ONLY)
    return respond(request, RoutesResponse(routes=[info(r) for r in gw.settings.routes.routes]))


def add_routes(router: web.UrlDispatcher) -> None:
    for suffix in ("", ".json", ".xml"):
        router.add_get(ROUTES_PATH + suffix, list_routes)
    for prefix in ("/api/", "/json/reply/", "/xml/reply/"):
        router.add_route("*", prefix + "GetRoutes", list_routes)
