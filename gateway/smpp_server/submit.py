"""submit_sm → a validated message, or the SMPP status that refuses it. Pure, no I/O.

Errors are values: a :class:`Refused` carries the command_status the client gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.validate import BadNumber, BadSource, Invalid, Rules, TooLong, Validator, recipients
from worker.encoding import decode_text
from worker.senders import Senders
from worker.smpp.pdu import (
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RSYSERR,
    SAR_MSG_REF_NUM,
    ShortMessage,
)
from worker.store import NewMessage

ESME_RINVSRCADR = 0x0000000A
ESME_RINVESMCLASS = 0x00000043
ESME_RINVSERTYP = 0x00000015
ESME_RINVSCHED = 0x00000061
ESME_RINVEXPIRY = 0x00000062
ESME_RINVDCS = 0x00000104  # SMPP 5.0's code; 3.4 clients treat it as a generic error
ESME_RINVREGDLVFLG = 0x00000040

_UDHI = 0x40  # esm_class: the short message starts with a user data header
_BINARY_CODINGS = frozenset({0x02, 0x04})  # 8-bit data: not text, so not for this gateway


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a submit_sm was not accepted: its command_status and a reason for the log."""

    status: int
    reason: str


def notify_flags(registered_delivery: int) -> str:
    """What the client asked to hear of (store.NewMessage.notify): "f" every final state,
    "x" final failures only, "i" intermediate states too."""
    flags = {1: "f", 2: "x"}.get(registered_delivery & 0x03, "")
    if registered_delivery & 0x10:
        flags += "i"
    return flags


def to_message(sm: ShortMessage, *, api_id: str, account: str, rules: Rules,
               channels: frozenset[str] | None,
               senders: Senders | None = None) -> NewMessage | Refused:
    """The message a submit_sm asks for, validated as an HTTP send is, or why not. Its
    source_addr is its sender (one of the user's ``senders``); an empty one sends with the
    channel's source_addr."""
    if sm.esm_class & _UDHI or SAR_MSG_REF_NUM in sm.tlvs:
        return Refused(ESME_RINVESMCLASS, "client-side concatenation is not supported yet: "
                       "send the whole text in message_payload")
    if sm.schedule_delivery_time:
        return Refused(ESME_RINVSCHED, "schedule_delivery_time is not supported")
    if sm.validity_period:
        return Refused(ESME_RINVEXPIRY, "validity_period is not supported")
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
    payload = sm.payload()
    if not payload:
        return Refused(ESME_RINVMSGLEN, "the message is empty")
    text = decode_text(payload, sm.data_coding)
    channel = _channel(rules, channels)
    try:
        valid = Validator(rules, channels, senders=senders).check(
            channel, tos[0], text, None, sm.source_addr)
    except BadSource as exc:
        return Refused(ESME_RINVSRCADR, str(exc))
    except BadNumber as exc:
        return Refused(ESME_RINVDSTADR, str(exc))
    except TooLong as exc:
        return Refused(ESME_RINVMSGLEN, str(exc))
    except Invalid as exc:
        return Refused(ESME_RINVSERTYP, str(exc))
    return NewMessage(api_id=api_id, account=account, channel=valid.channel,
                      to=valid.recipients[0], content=valid.content, encoding=valid.encoding,
                      segments=valid.segments, door="smpp",
                      notify=notify_flags(sm.registered_delivery), source=sm.source_addr,
                      sender=valid.sender)


def _channel(rules: Rules, allowed: frozenset[str] | None) -> str | None:
    """The gateway's default channel, or the user's first channel when that is not allowed."""
    if allowed is None or rules.default_channel in allowed:
        return None
    return min(allowed) if allowed else None


__all__ = ["ESME_RSYSERR", "Refused", "notify_flags", "to_message"]
