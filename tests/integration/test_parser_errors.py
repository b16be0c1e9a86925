"""Requests aiohttp's HTTP parser refuses still get a ResponseStatus, over a raw socket.

The gateway is served by ``gateway.serve.start``, the runner ``smsgw gateway`` itself uses:
these tests pin the aiohttp internals ``gateway.parser_errors`` relies on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.app import MAX_REQUEST_LINE, create_app
from gateway.serve import start
from worker.config import settings_from_dict

pytestmark = pytest.mark.integration

UNREADABLE = {
    "a request line over the limit":
        b"GET /communication/message/smpp/sms/status?ids=" + b"a" * MAX_REQUEST_LINE
        + b" HTTP/1.1\r\nHost: gw\r\n\r\n",
    "a header over the limit":
        b"GET /health/live HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
    "a malformed request line": b"GET /health/live HTTP/9.x\r\nHost: gw\r\n\r\n",
    "a malformed header": b"GET /health/live HTTP/1.1\r\nHost: gw\r\nno colon here\r\n\r\n",
    "a request line that is not HTTP": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
}


@pytest.fixture
async def gateway_port(redis_url: str) -> AsyncIterator[int]:
    settings = settings_from_dict({"gateway": {"default_channel": "sim"}, "channels": {"sim": {}}},
                                  {"REDIS_URL": redis_url}, source="test")
    runner = await start(create_app(settings), "127.0.0.1", 0)
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _exchange(port: int, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send ``request``, read until the server closes: (status line, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(10):
            raw = await reader.read()  # returns at EOF: only if the gateway closes
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status_line.encode(), headers, body


def _warnings_and_worse(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("case", UNREADABLE)
async def test_a_request_the_http_parser_refuses_gets_a_json_response_status_and_is_closed(
    gateway_port: int, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    status_line, headers, body = await _exchange(gateway_port, UNREADABLE[case])

    assert status_line.split()[1] == b"400", status_line
    assert headers["content-type"] == "application/json; charset=utf-8"
    reply: dict[str, Any] = json.loads(body)
    status = reply["ResponseStatus"]
    assert status["ErrorCode"] == "BadRequest" and status["Errors"] == []
    assert status["Message"].startswith("the HTTP request could not be read: ")
    assert "\n" not in status["Message"] and len(status["Message"]) < 300
    assert set(reply) == {"ResponseStatus"} and "StackTrace" not in status
    [warning] = _warnings_and_worse(caplog)  # one line, no traceback
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert "\n" not in warning.getMessage()


async def test_a_well_formed_request_is_served_normally_by_the_same_runner(
    gateway_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    status_line, headers, body = await _exchange(
        gateway_port, b"GET /health/live HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    assert status_line.split()[1] == b"200", (status_line, body)
    assert headers["content-type"].startswith("application/json")
    assert _warnings_and_worse(caplog) == []


async def test_a_failure_outside_the_error_middleware_gets_a_json_500_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    app = web.Application()  # no error middleware: the failure reaches aiohttp's handler
    app.router.add_get("/", broken)
    runner = await start(app, "127.0.0.1", 0)
    try:
        status_line, headers, body = await _exchange(
            runner.addresses[0][1], b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
    finally:
        await runner.cleanup()

    assert status_line.split()[1] == b"500", status_line
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"ResponseStatus": {"ErrorCode": "Exception",
                                                   "Message": "internal error", "Errors": []}}
    [error] = _warnings_and_worse(caplog)  # a bug: logged once, with its traceback
    assert error.levelno == logging.ERROR and error.exc_info is not None
    assert isinstance(error.exc_info[1], RuntimeError)
