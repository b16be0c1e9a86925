"""respond.read_body: request.read()'s bytes and size limit, with or without the whole body
already buffered."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request

from gateway.respond import read_body

BODY = b'{"Messages": [{"to": "+27820000001", "content": "hi"}]}'


def _request(payload: StreamReader, limit: int = 1024) -> web.Request:
    return make_mocked_request("POST", "/communication/message/smpp/sms", payload=payload,
                               client_max_size=limit)


def _stream(*chunks: bytes, eof: bool = True) -> StreamReader:
    stream = StreamReader(mock.Mock(_reading_paused=False), 2**16,
                          loop=asyncio.get_running_loop())
    for chunk in chunks:
        stream.feed_data(chunk)
    if eof:
        stream.feed_eof()
    return stream


async def test_a_body_that_has_arrived_is_read_whole() -> None:
    assert await read_body(_request(_stream(BODY[:10], BODY[10:]))) == BODY


async def test_an_empty_body_reads_as_empty() -> None:
    assert await read_body(_request(_stream())) == b""


async def test_a_body_still_arriving_is_awaited_to_its_end() -> None:
    stream = _stream(BODY[:10], eof=False)
    reading = asyncio.ensure_future(read_body(_request(stream)))
    await asyncio.sleep(0)  # one loop turn: the task starts and waits for the rest
    assert not reading.done()
    stream.feed_data(BODY[10:])
    stream.feed_eof()
    assert await reading == BODY


@pytest.mark.parametrize("arrived", [True, False])
async def test_a_body_over_the_limit_is_refused_413(arrived: bool) -> None:
    stream = _stream(BODY, eof=arrived)
    reading = asyncio.ensure_future(read_body(_request(stream, limit=len(BODY) - 1)))
    if not arrived:
        await asyncio.sleep(0)  # one loop turn: the task starts and waits for the end
        stream.feed_eof()
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await reading


async def test_a_body_at_the_limit_is_read() -> None:
    assert await read_body(_request(_stream(BODY), limit=len(BODY))) == BODY
