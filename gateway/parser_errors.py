"""A ResponseStatus for requests aiohttp answers before the application sees them.

When aiohttp's HTTP parser refuses a request (request line or a header over the limit, a
malformed request line or header), or an exception escapes the middlewares, aiohttp answers
from ``RequestHandler.handle_error``: plain text, and a traceback logged at ERROR. Middlewares
and ``on_response_prepare`` never run (there is no matched route), and aiohttp offers no hook
(aio-libs/aiohttp#3287). So :class:`GatewayRunner` makes the server build a request handler
whose ``handle_error`` answers a JSON ResponseStatus (see ``errors.outside_middleware``).

This leans on aiohttp internals, all of them here: ``AppRunner._make_server`` returns the
``web.Server`` that is the protocol factory, whose ``__call__`` builds a ``RequestHandler``
from ``_loop`` and ``_kwargs``, and ``handle_error``'s signature. The tests in
tests/integration/test_parser_errors.py go through the real runner and fail if any of that
changes. Nothing here runs per normal request: the classes are chosen once, at startup.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import outside_middleware
from gateway.respond import render_error_json

__all__ = ["GatewayRunner"]


class _JsonErrorsRequestHandler(web.RequestHandler):
    __slots__ = ()  # web.RequestHandler has slots: keep instances the same size

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        err = outside_middleware(status, exc, message, request.remote)
        if request.writer.output_size > 0:  # as aiohttp: part of a response is already sent
            raise ConnectionError("response already started, cannot send the error response")
        resp = render_error_json(err)
        resp.force_close()  # the connection's state is unknown after a parser error
        return resp


class _JsonErrorsServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        # web.Server.__call__ without its fallback for handler_args RequestHandler does not
        # accept: ours are the gateway's own, and must not be dropped silently.
        return _JsonErrorsRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer parser errors with a ResponseStatus."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Application._make_handler builds a plain web.Server and cannot be told otherwise;
        # changing its class keeps every setting aiohttp gave it, now and in later versions.
        server.__class__ = _JsonErrorsServer
        return server
