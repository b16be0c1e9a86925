"""GET /admin/routes (GetRoutes): the configured routes, in order. Admin keys only: routes
name every channel and the accounts routed apart."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import ADMIN_ROLES, authenticate
from gateway.context import GATEWAY
from gateway.dto import GetRoutes, RoutesResponse
from gateway.respond import respond
from gateway.routes import info
from gateway.views.params import add_predefined

ROUTES_PATH = "/admin/routes"


async def list_routes(request: web.Request) -> web.Response:
    """GetRoutes."""
    gw = request.app[GATEWAY]
    principal = await authenticate(gw.store, request.headers)
    principal.require_any(ADMIN_ROLES)
    return respond(request, RoutesResponse(routes=[info(r) for r in gw.settings.routes.routes]))


def add_routes(router: web.UrlDispatcher) -> None:
    for suffix in ("", ".json", ".xml"):
        router.add_get(ROUTES_PATH + suffix, list_routes)
    add_predefined(router, (GetRoutes, list_routes))
