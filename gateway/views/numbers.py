"""Admin API for number assignments (gateway/numbers.py): Admin keys only.

    GET          /admin/channels/{channel}/numbers            GetChannelNumbers
    GET          /admin/channels/{channel}/numbers/{number}   GetChannelNumber
    PUT|POST     /admin/channels/{channel}/numbers/{number}   AssignChannelNumber {account}
    DELETE       /admin/channels/{channel}/numbers/{number}   UnassignChannelNumber

and each DTO on the predefined routes. Which account owns a destination decides who receives
its MO messages, across tenants, so only an Admin assigns numbers (a Partner or Client: 403).
"""

from __future__ import annotations

from aiohttp import web

from gateway import wire
from gateway.auth import ADMIN_ROLES, authenticate
from gateway.context import GATEWAY
from gateway.dto import (
    AssignChannelNumber,
    ChannelNumber,
    ChannelNumberResponse,
    ChannelNumbersResponse,
    GetChannelNumber,
    GetChannelNumbers,
    UnassignChannelNumber,
)
from gateway.errors import NotFound
from gateway.numbers import InvalidNumber, assign, check_channel, check_number
from gateway.respond import respond
from gateway.views.params import add_predefined, body_dto, query

NUMBERS_PATH = "/admin/channels/{channel}/numbers"


async def list_numbers(request: web.Request) -> web.Response:
    """GetChannelNumbers, by number."""
    channel, _, _ = await _target(request, GetChannelNumbers, with_number=False)
    owned = await request.app[GATEWAY].store.numbers(channel)
    return respond(request, ChannelNumbersResponse(results=[
        ChannelNumber(channel=channel, number=n, account=a) for n, a in sorted(owned.items())]))


async def show(request: web.Request) -> web.Response:
    """GetChannelNumber."""
    channel, number, _ = await _target(request, GetChannelNumber)
    account = (await request.app[GATEWAY].store.numbers(channel)).get(number)
    if account is None:
        raise _unassigned(channel, number)
    return _answer(request, channel, number, account)


async def put(request: web.Request) -> web.Response:
    """AssignChannelNumber: the number's MO messages go to ``account`` from now on."""
    channel, number, dto = await _target(request, AssignChannelNumber)
    account = str(getattr(dto, "account", None) or "")
    if not account:
        raise InvalidNumber("account", "'account' is required")
    await assign(request.app[GATEWAY].store, channel, number, account)
    return _answer(request, channel, number, account)


async def delete(request: web.Request) -> web.Response:
    """UnassignChannelNumber: its MO messages go to the channel's default account, if any."""
    channel, number, _ = await _target(request, UnassignChannelNumber)
    store = request.app[GATEWAY].store
    account = (await store.numbers(channel)).get(number)
    if account is None or not await store.unassign_number(channel, number):
        raise _unassigned(channel, number)
    return _answer(request, channel, number, account)


def add_routes(router: web.UrlDispatcher) -> None:
    """The routes of the module docstring."""
    for suffix in ("", ".json", ".xml"):
        router.add_get(NUMBERS_PATH + suffix, list_numbers)
    one = NUMBERS_PATH + "/{number}"
    router.add_get(one, show)
    router.add_put(one, put)
    router.add_post(one, put)
    router.add_delete(one, delete)
    add_predefined(
        router, (GetChannelNumbers, list_numbers), (GetChannelNumber, show),
        (AssignChannelNumber, put), (UnassignChannelNumber, delete),
    )


async def _target(request: web.Request, model: type[wire.Model], *, with_number: bool = True
                  ) -> tuple[str, str, wire.Model]:
    """The Admin caller's channel and number (checked), and the request's DTO."""
    principal = await authenticate(request.app[GATEWAY].store, request.headers)
    principal.require_any(ADMIN_ROLES)
    dto = await body_dto(request, model)
    channel = (request.match_info.get("channel") or query(request, "channel")
               or getattr(dto, "channel", None) or "")
    number = (request.match_info.get("number") or query(request, "number")
              or getattr(dto, "number", None) or "")
    channel = check_channel(channel, request.app[GATEWAY].settings.channels)
    return channel, check_number(number) if with_number else "", dto


def _answer(request: web.Request, channel: str, number: str, account: str) -> web.Response:
    return respond(request, ChannelNumberResponse(
        assignment=ChannelNumber(channel=channel, number=number, account=account)))


def _unassigned(channel: str, number: str) -> NotFound:
    return NotFound(f"number '{number}' is not assigned on channel '{channel}'")
