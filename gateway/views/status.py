"""Status lookup by apiMessageId, by clientMessageId, and in batch."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from gateway import wire
from gateway.auth import SEND_ROLES, Principal, authenticate
from gateway.context import GATEWAY
from gateway.dto import (
    FindSMPPSmsStatus,
    GetSMPPSmsStatus,
    GetSMPPSmsStatusBatch,
    SMPPMessageStatus,
    SMPPStatusResponse,
    SMPPStatusTransition,
)
from gateway.errors import BadRequest, NotFound
from gateway.respond import request_format, respond
from gateway.views.params import query
from worker.ids import message_of
from worker.store import Record

MAX_BATCH = 1000


async def _principal(request: web.Request) -> Principal:
    principal = await authenticate(request.app[GATEWAY].store, request.headers)
    principal.require_any(SEND_ROLES)
    return principal


def _visible(principal: Principal, record: Record | None) -> bool:
    # Another tenant's message is indistinguishable from an unknown one.
    return record is not None and principal.sees_account(record.account)


async def by_api_id(request: web.Request) -> web.Response:
    """GET /communication/message/smpp/sms/{apiMessageId} and GetSMPPSmsStatus."""
    principal = await _principal(request)
    api_id = request.match_info.get("apiMessageId") or await _field(
        request, GetSMPPSmsStatus, "apiMessageId")
    if wire.format_suffix(api_id):  # /sms/{id}.xml: the suffix picks the format, not the id
        api_id = api_id.rsplit(".", 1)[0]
    message = message_of(api_id)  # a part id names its message
    (record,) = await request.app[GATEWAY].store.get([message]) if message else [None]
    if record is None or not _visible(principal, record):
        raise NotFound(f"no message with apiMessageId '{api_id}'")
    return respond(request, SMPPStatusResponse(messages=[to_dto(record)]))


async def by_client_id(request: web.Request) -> web.Response:
    """GET /communication/message/smpp/sms?clientMessageId=… and FindSMPPSmsStatus."""
    principal = await _principal(request)
    cmid = await _field(request, FindSMPPSmsStatus, "clientMessageId")
    # clientMessageIds are per account: a Partner's lookup also covers the accounts it owns.
    accounts = [principal.account, *sorted(principal.children)] if "Partner" in \
        principal.roles else [principal.account]
    store = request.app[GATEWAY].store
    records = [r for account in accounts for r in await store.find_by_cmid(account, cmid)
               if _visible(principal, r)]
    if not records:
        raise NotFound(f"no message with clientMessageId '{cmid}'")
    return respond(request, SMPPStatusResponse(messages=[to_dto(r) for r in records]))


async def batch(request: web.Request) -> web.Response:
    """Up to 1000 apiMessageIds in one lookup; unknown ones are simply absent."""
    principal = await _principal(request)
    if request.method == "GET":
        ids = [i for i in query(request, "apiMessageIds").split(",") if i]
    else:
        req = wire.parse(GetSMPPSmsStatusBatch, await request.read(), request_format(request))
        ids = list(req.apiMessageIds or [])
    if not ids or len(ids) > MAX_BATCH:
        msg = f"'apiMessageIds' must list 1 to {MAX_BATCH} ids"
        raise BadRequest(msg, field_errors=[("Length", "apiMessageIds", msg)])
    records = await request.app[GATEWAY].store.get(
        list(dict.fromkeys(m for m in map(message_of, ids) if m)))
    visible = [r for r in records if r is not None and _visible(principal, r)]
    return respond(request, SMPPStatusResponse(messages=[to_dto(r) for r in visible]))


async def _field(request: web.Request, model: type[wire.Model], name: str) -> str:
    """A request field from the query string, or from a body on the predefined routes."""
    value: object = query(request, name)
    if not value and request.can_read_body:
        dto = wire.parse(model, await request.read(), request_format(request))
        value = getattr(dto, name, None)
    if not value:
        raise BadRequest(f"'{name}' is required",
                         field_errors=[("NotEmpty", name, f"'{name}' is required")])
    return str(value)


def _iso(ms: str | None) -> str | None:
    if not ms or ms == "0":
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="milliseconds")


def to_dto(record: Record) -> SMPPMessageStatus:
    """A stored record as the status DTO."""
    f = record.fields
    return SMPPMessageStatus(
        apiMessageId=record.api_id, clientMessageId=f.get("cmid") or None,
        channel=f.get("channel"), route=f.get("route") or None,
        chain=f["chain"].split(",") if f.get("chain") else None,
        to=f.get("to"), status=f.get("status"),
        encoding=f.get("enc"), segments=int(f["seg"]) if f.get("seg") else None,
        smscMessageIds=[s for s in f.get("smsc_ids", "").split(",") if s],
        attempts=int(f.get("attempts") or 0),
        errorCode=f.get("err_code") or None, errorText=f.get("err_text") or None,
        receiptStat=f.get("dlr_stat") or None, receiptErr=f.get("dlr_err") or None,
        acceptedAt=_iso(f.get("accepted_at")), submittedAt=_iso(f.get("submitted_at")),
        doneAt=_iso(f.get("done_at")),
        transitions=[
            SMPPStatusTransition(status=s, at=_iso(str(at)), detail=d or None)
            for s, at, d in record.transitions()
        ],
        door=f.get("door") or "http", sender=f.get("sender") or None,
        scheduledAt=_iso(f.get("sched_at")), validUntil=_iso(f.get("valid_until")),
        partIds=f["parts"].split(",") if f.get("parts") else None,
        partsArrived=f.get("concat") or None,
    )
