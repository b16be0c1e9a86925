"""Reading a request's operation fields: query string, body DTO, list limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from gateway import wire
from gateway.errors import BadRequest
from gateway.operations import PREDEFINED
from gateway.respond import request_format

MAX_LIMIT = 1000


async def body_dto(request: web.Request, model: type[wire.Model]) -> wire.Model:
    """The request DTO from the body; an empty body is an empty DTO."""
    body = await request.read() if request.can_read_body else b""
    if not body.strip():
        return model()
    return wire.parse(model, body, request_format(request))


def query(request: web.Request, name: str) -> str:
    """A query parameter ('' if absent); ServiceStack binds query names case-insensitively."""
    name = name.lower()
    return next((v for k, v in request.query.items() if k.lower() == name), "")


def list_limit(value: object) -> int:
    """A ``limit`` field: 1 to MAX_LIMIT, 100 when absent."""
    try:
        limit = int(str(value or 100))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        msg = f"'limit' must be between 1 and {MAX_LIMIT}"
        raise BadRequest(msg, field_errors=[("Invalid", "limit", msg)])
    return limit


Handler = Callable[[web.Request], Awaitable[web.Response]]


def add_predefined(router: web.UrlDispatcher,
                   *operations: tuple[type[BaseModel], Handler]) -> None:
    """Each operation on ServiceStack's predefined routes (/api/, /json/reply/, /xml/reply/
    and the request DTO's name), for any verb, as ServiceStack serves every request DTO."""
    for prefix in PREDEFINED:
        for model, handler in operations:
            router.add_route("*", prefix + model.__name__, handler)
