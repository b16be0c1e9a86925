"""Mobile-originated messages: ``GET /communication/message/smpp/mo`` and GetSMPPMoMessages.

An MO message has one owner: the account its destination is assigned to on its channel (the
admin API's channel numbers), else the channel's ``mo_default_account``, else none (Admins
only). It is listed here for its owner and posted to the owner's inbound URL for the channel,
if it set one. A Client key sees its own account's, a Partner key also those of the accounts it
owns (``?account=``), both limited to the channels the key may use. An Admin key sees every MO
message: of every channel, or of one (``?channel=``), unless it names an ``account``.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth import SEND_ROLES, Principal, authenticate, iso
from gateway.context import GATEWAY
from gateway.dto import GetSMPPMoMessages, SMPPMoMessage, SMPPMoResponse
from gateway.errors import Forbidden, NotFound
from gateway.respond import respond
from gateway.views.params import add_predefined, body_dto, list_limit, query
from worker.store import WebhookStore

MO_PATH = "/communication/message/smpp/mo"
SCAN_FOR_CHANNEL = 10_000  # an account's list holds every channel: read this far to filter one


async def list_mo(request: web.Request) -> web.Response:
    """The newest MO messages the caller may see, newest first."""
    principal = await authenticate(request.app[GATEWAY].store, request.headers)
    principal.require_any(SEND_ROLES)
    dto = await body_dto(request, GetSMPPMoMessages)
    channel = query(request, "channel") or getattr(dto, "channel", None) or ""
    account = query(request, "account") or getattr(dto, "account", None) or ""
    limit = list_limit(query(request, "limit") or getattr(dto, "limit", None))
    if channel and principal.channels is not None and channel not in principal.channels:
        raise Forbidden(f"this API key may not use channel '{channel}'")
    gw = request.app[GATEWAY]
    if "Admin" in principal.roles and not account:
        usable = principal.channels
        channels = [channel] if channel else [
            c for c in gw.settings.channels if usable is None or c in usable]
        rows = [r for c in channels for r in await gw.store.mo_messages(c, limit)]
        rows.sort(key=lambda r: int(r.get("received_at") or 0), reverse=True)
        rows = rows[:limit]
    else:
        account = account or principal.account
        if not principal.sees_account(account):
            raise NotFound(f"no account '{account}'")
        rows = await WebhookStore(gw.redis).account_mo(
            account, SCAN_FOR_CHANNEL if channel else limit)
        rows = [r for r in rows if _allowed(principal, r.get("channel", ""), channel)][:limit]
    return respond(request, SMPPMoResponse(messages=[to_dto(r) for r in rows]))


def add_routes(router: web.UrlDispatcher) -> None:
    """The MO listing on its REST path (with format suffixes) and the predefined routes."""
    for suffix in ("", ".json", ".xml"):
        router.add_get(MO_PATH + suffix, list_mo)
    add_predefined(router, (GetSMPPMoMessages, list_mo))


def to_dto(row: dict[str, str]) -> SMPPMoMessage:
    """A stored MO record as its DTO."""
    received = row.get("received_at", "")
    return SMPPMoMessage(
        moMessageId=row.get("id"), account=row.get("account") or None,
        channel=row.get("channel"), source=row.get("from"),
        destination=row.get("to"), text=row.get("text"), parts=int(row.get("parts") or 1),
        receivedAt=iso(int(received)) if received.isdigit() else None,
    )


def _allowed(principal: Principal, row_channel: str, wanted: str) -> bool:
    if wanted and row_channel != wanted:
        return False
    return principal.channels is None or row_channel in principal.channels


