"""POST /communication/message/smpp/sms: validate, store durably, enqueue, answer at once.

The hot path of the gateway, so messages travel as plain dicts shaped like the DTOs
(SMPPMessage's members) rather than as pydantic models: a well-formed body is checked here
and a response is written by ``wire.render_plain``; anything malformed goes through pydantic,
whose error answers stay those of every other operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway import wire
from gateway.auth import SEND_ROLES, Principal, authenticate, limit_error
from gateway.context import GATEWAY, Gateway
from gateway.dto import SendSMPPSmsRequest, SMPPMsgResponse
from gateway.errors import BadRequest, Unavailable
from gateway.metrics import METRICS
from gateway.respond import read_body, request_format, respond_plain
from gateway.validate import (
    BadSchedule,
    BadValidity,
    Invalid,
    Rules,
    Target,
    Timing,
    Valid,
    Validator,
    timed_fingerprint,
)
from worker.ids import new_ids
from worker.jobs import JOB_EXPIRY_SECONDS, wake_job
from worker.store import AcceptResult, LimitExceeded, NewMessage, NotReplicated, now_ms

CONFLICT = ("clientMessageId was already used with a different content, channel, sender, "
            "schedule or validity")

Plain = dict[str, Any]  # a DTO's members by name, in declared order, None left out
_UNROUTED = (Target(),)  # each recipient of a message that named its channel
_TIMING = ("scheduledAt", "validUntil")  # SMPPMessage's extension members, echoed as given


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
    messages = read_messages(await read_body(request), request_format(request))
    if not messages:
        msg = "'Messages' must not be empty."
        raise BadRequest(msg, code="NotEmpty", field_errors=[("NotEmpty", "Messages", msg)])
    limit = gw.settings.gateway.max_messages_per_request
    if len(messages) > limit:
        msg = f"at most {limit} messages per request, got {len(messages)}"
        raise BadRequest(msg, code="TooMany", field_errors=[("TooMany", "Messages", msg)])
    validator = Validator(gw.rules, principal.channels, principal.account, principal.parent,
                          principal.senders)
    now = now_ms()
    checked: list[Valid | Invalid] = [_check(validator, m, gw.rules, now) for m in messages]
    invalid, unroutable, total = _tally(checked)
    if invalid:
        request.app[METRICS].rejected("invalid").inc(invalid)
    if unroutable:
        request.app[METRICS].rejected("unroutable").inc(unroutable)
    if total > limit:
        msg = f"at most {limit} recipients per request, got {total}"
        raise BadRequest(msg, code="TooMany", field_errors=[("TooMany", "Messages", msg)])
    responses = await _accept(gw, principal, messages, checked, total, now)
    return respond_plain(request, SMPPMsgResponse, {"messages": responses})


def _tally(checked: list[Valid | Invalid]) -> tuple[int, int, int]:
    """(invalid messages, unroutable recipients, recipients to store), in one pass."""
    invalid = unroutable = total = 0
    for c in checked:
        if isinstance(c, Invalid):
            invalid += 1
            continue
        total += len(c.recipients)
        for t in c.targets:
            if t.refused:
                unroutable += 1
    return invalid, unroutable, total - unroutable


def read_messages(body: bytes, fmt: wire.Fmt) -> list[Plain]:
    """The request's messages, each a dict of SMPPMessage's members (some may be missing);
    raises WireError exactly as ``wire.parse(SendSMPPSmsRequest, body, fmt)`` does."""
    data = wire.read(SendSMPPSmsRequest, body, fmt)
    plain = _well_formed(data.get("Messages"))
    if plain is not None:
        return plain
    request = wire.validate(SendSMPPSmsRequest, data)  # raises, or accepts what we did not
    return [m.model_dump() for m in request.Messages or []]


def _well_formed(messages: Any) -> list[Plain] | None:
    """``messages`` if pydantic would take it as is: no list, or a list of objects whose
    members (already only SMPPMessage's, by name) are strings or null. None otherwise."""
    if messages is None:
        return []
    if type(messages) is not list:
        return None
    for m in messages:
        if type(m) is not dict:
            return None
        for value in m.values():
            if value is not None and type(value) is not str:
                return None
    return messages


def _check(validator: Validator, m: Plain, rules: Rules, now: int) -> Valid | Invalid:
    try:
        valid = validator.check(m.get("channel"), m.get("to"), m.get("content"),
                                m.get("clientMessageId"), m.get("sender"))
        if m.get("scheduledAt") is None and m.get("validUntil") is None:
            return valid  # the usual message
        at, until = _instant(m, "scheduledAt"), _instant(m, "validUntil")
        return replace(valid, timing=_timing(at, until, rules, now),
                       fingerprint=timed_fingerprint(valid.fingerprint, at, until))
    except Invalid as exc:
        return exc


def _timing(at: int | None, until: int | None, rules: Rules, now: int) -> Timing:
    """The message's scheduledAt and validUntil, checked (Invalid names the field)."""
    try:
        return rules.timing(at, until, now)
    except BadSchedule as exc:
        raise Invalid(f"'scheduledAt': {exc}") from None
    except BadValidity as exc:
        raise Invalid(f"'validUntil': {exc}") from None


def _instant(m: Plain, name: str) -> int | None:
    """An ISO 8601 time with its UTC offset (``Z`` for UTC), as epoch ms; None if absent."""
    text = m.get(name)
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"'{name}' is not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise Invalid(f"'{name}' must give its offset from UTC, e.g. 2026-01-31T10:00:00Z")
    return round(at.timestamp() * 1000)


async def _accept(
    gw: Gateway, principal: Principal, messages: list[Plain], checked: list[Valid | Invalid],
    total: int, now: int,
) -> list[Plain]:
    """One store call for the whole request, behind the key's limits; ids are returned only
    once it has committed."""
    ids = iter(new_ids(total))
    account = principal.account
    new = [
        NewMessage(api_id=next(ids), account=account, channel=c.channel, to=to,
                   content=c.content, encoding=c.encoding, segments=c.segments, cmid=c.cmid,
                   fingerprint=c.fingerprint, sender=c.sender,
                   scheduled_at=c.timing.scheduled_at, valid_until=c.timing.valid_until)
        if not c.targets else
        NewMessage(api_id=next(ids), account=account, channel=t.channel, to=to,
                   content=c.content, encoding=t.encoding, segments=t.segments, cmid=c.cmid,
                   fingerprint=c.fingerprint, route=t.route, chain=t.chain, sender=c.sender,
                   scheduled_at=c.timing.scheduled_at, valid_until=c.timing.valid_until)
        for c in checked if isinstance(c, Valid)
        for to, t in zip(c.recipients, c.targets or _UNROUTED * len(c.recipients), strict=True)
        if not t.refused
    ]
    job_id, payload = wake_job(now)
    try:
        stored = await gw.store.accept_within(
            principal.limits, new, window_seconds=gw.settings.gateway.idempotency_window_seconds,
            job_id=job_id, job_payload=payload, job_expiry_seconds=JOB_EXPIRY_SECONDS,
        )
    except NotReplicated as exc:
        raise not_replicated(exc) from None
    if isinstance(stored, LimitExceeded):
        raise limit_error(stored, principal.limits)
    return answers(messages, checked, stored)


def answers(
    messages: list[Plain], checked: list[Valid | Invalid], stored: Sequence[AcceptResult]
) -> list[Plain]:
    """SMPPResponseMsg's, as plain dicts: one per invalid message, one per recipient of a
    valid one (``stored`` holds the store's results for those, in order)."""
    results = iter(stored)
    out: list[Plain] = []
    for m, c in zip(messages, checked, strict=True):
        if isinstance(c, Invalid):
            out.append(_refused(m.get("to"), str(c), _message(m)))
            continue
        cmid = m.get("clientMessageId")
        for to, t in zip(c.recipients, c.targets or _UNROUTED * len(c.recipients), strict=True):
            sent = {"channel": t.channel or c.channel, "to": to, "content": c.content}
            if not sent["channel"]:  # not routed: the message named none
                del sent["channel"]
            if cmid is not None:
                sent["clientMessageId"] = cmid
            if c.sender:  # echoed only when given: the contract's output is unchanged
                sent["sender"] = c.sender
            for name in _TIMING:
                if m.get(name) is not None:
                    sent[name] = m[name]
            if t.refused:
                out.append(_refused(to, t.refused, sent))
                continue
            r = next(results)
            if r.conflict:
                out.append(_refused(to, CONFLICT, sent))
            else:
                out.append({"apiMessageId": r.api_id, "accepted": True, "to": to, "msg": sent})
    return out


def _refused(to: str | None, error: str, msg: Plain) -> Plain:
    if to is None:
        return {"accepted": False, "error": error, "msg": msg}
    return {"accepted": False, "to": to, "error": error, "msg": msg}


def _message(m: Plain) -> Plain:
    """A message as received, in SMPPMessage's order (the request may have any order)."""
    return {name: m[name] for name in ("channel", "to", "content", "clientMessageId", "sender",
                                       *_TIMING)
            if m.get(name) is not None}
