"""POST /communication/message/smpp/sms: validate, store durably, enqueue, answer at once."""

from __future__ import annotations

from aiohttp import web

from gateway import wire
from gateway.auth import SEND_ROLES, Principal, authenticate, limit_error
from gateway.context import GATEWAY, Gateway
from gateway.dto import SendSMPPSmsRequest, SMPPMessage, SMPPMsgResponse, SMPPResponseMsg
from gateway.errors import BadRequest, Unavailable
from gateway.metrics import METRICS
from gateway.respond import request_format, respond
from gateway.validate import Invalid, Valid, validate
from worker.ids import new_id
from worker.jobs import wake_job
from worker.store import LimitExceeded, NewMessage, NotReplicated, now_ms

JOB_EXPIRY_SECONDS = 3600  # a wake-up job: the messages themselves never expire this way


def not_replicated(exc: NotReplicated) -> Unavailable:
    """The answer when the primary stored a request but too few replicas confirmed it."""
    return Unavailable(
        f"the request was stored, but only {exc.acks} of the {exc.wanted} Redis replicas "
        "required confirmed it in time, so a failover could still lose it: it may or may not "
        "be sent. Retrying with the same clientMessageIds is safe: a message already accepted "
        "is answered with its first apiMessageId and sent once.",
        code="NotReplicated", headers={"Retry-After": "1"})


async def send(request: web.Request) -> web.Response:
    """The ServiceStack operation SendSMPPSmsRequest."""
    gw = request.app[GATEWAY]
    principal = await authenticate(gw.store, request.headers)
    principal.require_any(SEND_ROLES)
    req = wire.parse(SendSMPPSmsRequest, await request.read(), request_format(request))
    messages = req.Messages or []
    if not messages:
        msg = "'Messages' must not be empty."
        raise BadRequest(msg, code="NotEmpty", field_errors=[("NotEmpty", "Messages", msg)])
    limit = gw.settings.gateway.max_messages_per_request
    if len(messages) > limit:
        msg = f"at most {limit} messages per request, got {len(messages)}"
        raise BadRequest(msg, code="TooMany", field_errors=[("TooMany", "Messages", msg)])
    checked: list[Valid | Invalid] = [_check(gw, m, principal.channels) for m in messages]
    invalid = sum(1 for c in checked if isinstance(c, Invalid))
    if invalid:
        request.app[METRICS].rejected.labels("invalid").inc(invalid)
    total = sum(len(c.recipients) for c in checked if isinstance(c, Valid))
    if total > limit:
        msg = f"at most {limit} recipients per request, got {total}"
        raise BadRequest(msg, code="TooMany", field_errors=[("TooMany", "Messages", msg)])
    responses = await _accept(gw, principal, messages, checked)
    return respond(request, SMPPMsgResponse(messages=responses))


def _check(gw: Gateway, m: SMPPMessage, allowed: frozenset[str] | None) -> Valid | Invalid:
    try:
        return validate(m.channel, m.to, m.content, m.clientMessageId, gw.rules, allowed)
    except Invalid as exc:
        return exc


async def _accept(
    gw: Gateway, principal: Principal, messages: list[SMPPMessage],
    checked: list[Valid | Invalid],
) -> list[SMPPResponseMsg]:
    """One store call for the whole request, behind the key's limits; ids are returned only
    once it has committed."""
    new: list[NewMessage] = []
    for c in checked:
        if isinstance(c, Valid):
            new.extend(
                NewMessage(api_id=new_id(), account=principal.account, channel=c.channel, to=to,
                           content=c.content, encoding=c.encoding, segments=c.segments,
                           cmid=c.cmid, fingerprint=c.fingerprint)
                for to in c.recipients
            )
    job_id, payload = wake_job(now_ms())
    try:
        stored = await gw.store.accept_within(
            principal.limits, new, window_seconds=gw.settings.gateway.idempotency_window_seconds,
            job_id=job_id, job_payload=payload, job_expiry_seconds=JOB_EXPIRY_SECONDS,
        )
    except NotReplicated as exc:
        raise not_replicated(exc) from None
    if isinstance(stored, LimitExceeded):
        raise limit_error(stored, principal.limits)
    results = iter(stored)
    out: list[SMPPResponseMsg] = []
    for m, c in zip(messages, checked, strict=True):
        if isinstance(c, Invalid):
            out.append(SMPPResponseMsg(accepted=False, to=m.to, error=str(c), msg=m))
            continue
        for to in c.recipients:
            r = next(results)
            sent = SMPPMessage(channel=c.channel, to=to, content=m.content,
                               clientMessageId=m.clientMessageId)
            if r.conflict:
                out.append(SMPPResponseMsg(
                    accepted=False, to=to, msg=sent,
                    error="clientMessageId was already used with a different content or "
                          "channel"))
            else:
                out.append(SMPPResponseMsg(apiMessageId=r.api_id, accepted=True, to=to,
                                           msg=sent))
    return out

