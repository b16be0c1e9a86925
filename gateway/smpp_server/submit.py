"""submit_sm → a validated message, or the SMPP status that refuses it. Pure, no I/O.

Errors are values: a :class:`Refused` carries the command_status the client gets.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.smpp_server.concat import ESME_RINVESMCLASS, ESME_RINVSERTYP, Refused, part_of
from gateway.validate import (
    BadNumber,
    BadSchedule,
    BadSource,
    BadValidity,
    Invalid,
    Rules,
    Timing,
    TooLong,
    Validator,
    recipients,
)
from worker.encoding import decode_text
from worker.senders import Senders
from worker.smpp.pdu import ESME_RINVDSTADR, ESME_RINVMSGLEN, ESME_RSYSERR, ShortMessage
from worker.smpp.times import BadTime, parse_time
from worker.store import NewMessage, NewPart, now_ms

ESME_RINVSRCADR = 0x0000000A
ESME_RINVSCHED = 0x00000061
ESME_RINVEXPIRY = 0x00000062
ESME_RINVDCS = 0x00000104  # SMPP 5.0's code; 3.4 clients treat it as a generic error
ESME_RINVREGDLVFLG = 0x00000040

_BINARY_CODINGS = frozenset({0x02, 0x04})  # 8-bit data: not text, so not for this gateway


def notify_flags(registered_delivery: int) -> str:
    """What the client asked to hear of (store.NewMessage.notify): "f" every final state,
    "x" final failures only, "i" intermediate states too."""
    flags = {1: "f", 2: "x"}.get(registered_delivery & 0x03, "")
    if registered_delivery & 0x10:
        flags += "i"
    return flags


def to_message(sm: ShortMessage, *, api_id: str, account: str, rules: Rules,
               channels: frozenset[str] | None, senders: Senders | None = None,
               now: int | None = None, parent: str = "") -> NewMessage | NewPart | Refused:
    """The message a submit_sm asks for, validated and routed as an HTTP send is (``parent``:
    the account's parent, which routes may match), or why not. Its
    source_addr is its sender (one of the user's ``senders``); an empty one sends with the
    channel's source_addr. ``now`` (epoch ms, the clock's by default) is what its relative
    times count from. A part of a message the client concatenated itself (UDH or SAR) is a
    NewPart, its text validated alone here (and the whole message's once every part is in:
    see concat.py)."""
    read = part_of(sm)
    if isinstance(read, Refused):
        return read
    concat, payload = read
    if concat is not None and concat.total > rules.max_segments:
        return Refused(ESME_RINVMSGLEN, f"{concat.total} parts; the limit is "
                       f"{rules.max_segments}")
    timing = Timing()
    if sm.schedule_delivery_time or sm.validity_period:
        got = _timing(sm, rules, now_ms() if now is None else now)
        if isinstance(got, Refused):
            return got
        timing = got
    if sm.registered_delivery & 0x03 == 0x03:
        return Refused(ESME_RINVREGDLVFLG, "registered_delivery 3 is reserved")
    if sm.data_coding in _BINARY_CODINGS:
        return Refused(ESME_RINVDCS, "binary data_coding is not supported")
    try:
        tos = recipients(sm.destination_addr, rules.default_country_code)
    except Invalid as exc:
        return Refused(ESME_RINVDSTADR, str(exc))
    if len(tos) != 1:
        return Refused(ESME_RINVDSTADR, "destination_addr must name one number")
    if not payload:
        return Refused(ESME_RINVMSGLEN, "the message is empty")
    text = decode_text(payload, sm.data_coding)
    # With routes, they choose among the user's channels; without, the default channel.
    channel = None if rules.routes else _channel(rules, channels)
    try:
        valid = Validator(rules, channels, account, parent, senders=senders).check(
            channel, tos[0], text, None, sm.source_addr)
    except BadSource as exc:
        return Refused(ESME_RINVSRCADR, str(exc))
    except BadNumber as exc:
        return Refused(ESME_RINVDSTADR, str(exc))
    except TooLong as exc:
        return Refused(ESME_RINVMSGLEN, str(exc))
    except Invalid as exc:
        return Refused(ESME_RINVSERTYP, str(exc))
    msg = NewMessage(api_id=api_id, account=account, channel=valid.channel,
                     to=valid.recipients[0], content=valid.content, encoding=valid.encoding,
                     segments=valid.segments, door="smpp",
                     notify=notify_flags(sm.registered_delivery), source=sm.source_addr,
                     sender=valid.sender, scheduled_at=timing.scheduled_at,
                     valid_until=timing.valid_until)
    if valid.targets:  # routed: where its route sends it, or why no route can
        (t,) = valid.targets
        if t.refused:
            return Refused(ESME_RINVMSGLEN if t.too_long else ESME_RINVDSTADR, t.refused)
        msg = replace(msg, channel=t.channel, encoding=t.encoding, segments=t.segments,
                      route=t.route, chain=t.chain)
    if concat is None:
        return msg
    return NewPart(message=msg, ref_bits=concat.ref_bits, ref=concat.ref, total=concat.total,
                   seq=concat.seq, data_coding=sm.data_coding, octets=payload)


def _timing(sm: ShortMessage, rules: Rules, now: int) -> Timing | Refused:
    """When the message is sent and until when, or why not (a malformed time, or one out of
    the gateway's bounds: RINVSCHED for the schedule, RINVEXPIRY for the validity)."""
    try:
        at = parse_time(sm.schedule_delivery_time, now) if sm.schedule_delivery_time else None
    except BadTime as exc:
        return Refused(ESME_RINVSCHED, f"schedule_delivery_time: {exc}")
    try:
        until = parse_time(sm.validity_period, now) if sm.validity_period else None
    except BadTime as exc:
        return Refused(ESME_RINVEXPIRY, f"validity_period: {exc}")
    try:
        return rules.timing(at, until, now)
    except BadSchedule as exc:
        return Refused(ESME_RINVSCHED, f"schedule_delivery_time: {exc}")
    except BadValidity as exc:
        return Refused(ESME_RINVEXPIRY, f"validity_period: {exc}")


def _channel(rules: Rules, allowed: frozenset[str] | None) -> str | None:
    """The gateway's default channel, or the user's first channel when that is not allowed."""
    if allowed is None or rules.default_channel in allowed:
        return None
    return min(allowed) if allowed else None


__all__ = ["ESME_RINVESMCLASS", "ESME_RSYSERR", "Refused", "notify_flags", "to_message"]
