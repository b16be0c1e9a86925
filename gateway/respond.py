"""aiohttp glue for the wire layer: negotiate formats from a request, build responses."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway import wire
from gateway.errors import ApiError


def request_format(request: web.Request) -> wire.Fmt:
    """Format of the request body."""
    return _request_format(request.path, request.headers.get("Content-Type", ""))


def response_format(request: web.Request) -> wire.Fmt:
    """Negotiated format of the response (ServiceStack's precedence)."""
    accept = request.headers.get("Accept", "")
    content_type = request.headers.get("Content-Type", "")
    if request.query_string:
        return wire.response_format(request.path, request.query, accept, content_type)
    return _response_format(request.path, accept, content_type)


# Clients repeat the same few paths and headers: negotiate each combination once.
_request_format = functools.lru_cache(maxsize=1024)(wire.request_format)


@functools.lru_cache(maxsize=1024)
def _response_format(path: str, accept: str, content_type: str) -> wire.Fmt:
    return wire.response_format(path, {}, accept, content_type)


async def read_body(request: web.Request) -> bytes:
    """``await request.read()`` without its read loop when the whole body has already arrived
    (a small request's usual case): the same bytes, and the same 413 over the size limit."""
    content = request.content
    if not content.is_eof():
        return await request.read()
    body = content.read_nowait()
    limit = request.client_max_size
    if limit and len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(limit, len(body))
    return body


def respond(request: web.Request, dto: BaseModel, status: int = 200,
            headers: dict[str, str] | None = None) -> web.Response:
    """Render ``dto`` in the negotiated format."""
    body, content_type = wire.render(dto, response_format(request))
    resp = web.Response(body=body, status=status, headers=headers)
    resp.headers["Content-Type"] = content_type
    return resp


def respond_plain(request: web.Request, model_cls: type[BaseModel],
                  data: dict[str, Any]) -> web.Response:
    """:func:`respond` for ``data`` shaped like a ``model_cls`` (see wire.render_plain)."""
    body, content_type = wire.render_plain(model_cls, data, response_format(request))
    return web.Response(body=body, headers={"Content-Type": content_type})


def render_error(request: web.Request, exc: ApiError) -> web.Response:
    """A ResponseStatus body for ``exc``, in the negotiated format."""
    dto = wire.error_response(exc.code, exc.message, exc.field_errors)
    return respond(request, dto, exc.status, exc.headers)


def render_error_json(exc: ApiError) -> web.Response:
    """:func:`render_error` in JSON, for a request whose headers could not be read (nothing
    to negotiate from) or when negotiating itself may be what failed."""
    body, content_type = wire.render(
        wire.error_response(exc.code, exc.message, exc.field_errors), "json")
    resp = web.Response(body=body, status=exc.status, headers=exc.headers)
    resp.headers["Content-Type"] = content_type
    return resp
