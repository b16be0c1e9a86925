"""Messages an SMPP client concatenated itself, by UDH (esm_class 0x40, IE 0x00 or 0x08) or by
the SAR TLVs: which part a submit_sm is, and the one message its parts make.

Each part is stored in Redis (worker/store/parts.py) before it is answered; the part that
completes its message is stored only together with the message, built here from the octets of
every part, joined first and then decoded (a UCS-2 character or a GSM escape may straddle two
parts), and validated as a whole submit is. Parts never completed are sent as they are, in
order, once ``concat_wait_seconds`` have passed since the first (:func:`sweep`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.validate import Invalid, Rules, TooLong, Validator
from worker.encoding import ESM_UDHI, MAX_SEGMENTS, decode_text, read_udh
from worker.smpp.pdu import (
    ESME_RINVMSGLEN,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
    ShortMessage,
)
from worker.store import Joined, NewPart, PartAnswer, Store, Wake

log = logging.getLogger("smsgw.smpp_server")

ESME_RINVESMCLASS = 0x00000043
ESME_RINVPARLEN = 0x000000C2
ESME_RINVSERTYP = 0x00000015
_SAR = (SAR_MSG_REF_NUM, SAR_TOTAL_SEGMENTS, SAR_SEGMENT_SEQNUM)
_TRIES = 3  # builds of one message when other parts keep arriving at the same moment
SWEEP_BATCH = 100


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a submit_sm was not accepted: its command_status and a reason for the log."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Concat:
    """Which part of which message a submit_sm is."""

    ref_bits: int  # 8 (UDH IE 0x00) or 16 (UDH IE 0x08, SAR)
    ref: int
    total: int
    seq: int


def part_of(sm: ShortMessage) -> tuple[Concat | None, bytes] | Refused:
    """The part a submit_sm is (None: a whole message) and its text's octets (after any UDH),
    or why it is refused: a malformed UDH, or a part number outside 1..total."""
    sar = [tag in sm.tlvs for tag in _SAR]
    if sm.esm_class & ESM_UDHI:
        if any(sar):
            return Refused(ESME_RINVESMCLASS, "both a UDH and SAR TLVs")
        read = read_udh(sm.short_message)
        if read is None:
            return Refused(ESME_RINVESMCLASS, "malformed user data header")
        udh, octets = read
        if udh is None:  # port addressing and the like: not text this gateway could send
            return Refused(ESME_RINVESMCLASS, "a user data header without a concatenation "
                           "element is not supported")
        concat = Concat(udh.ref_bits, udh.ref, udh.total, udh.seq)
    elif any(sar):
        ref, total, seq = (sm.tlvs.get(tag, b"") for tag in _SAR)
        if len(ref) != 2 or len(total) != 1 or len(seq) != 1:
            return Refused(ESME_RINVPARLEN, "sar_msg_ref_num (2 octets), sar_total_segments "
                           "and sar_segment_seqnum (1 octet each) go together")
        concat, octets = Concat(16, int.from_bytes(ref, "big"), total[0], seq[0]), sm.payload()
    else:
        return None, sm.payload()
    if not 1 <= concat.seq <= concat.total:
        return Refused(ESME_RINVESMCLASS, f"part {concat.seq} of {concat.total}")
    return concat, octets


def joined(answer: PartAnswer, rules: Rules) -> Joined | Refused:
    """The message the parts in ``answer`` make (what arrived of it, when the sweep sends an
    incomplete one: then the segment limit is SMPP's, not the gateway's, since every part was
    answered ESME_ROK already)."""
    octets = b"".join(o for _, o in answer.parts)
    text = decode_text(octets, answer.data_coding)
    if len(answer.parts) < answer.total:
        rules = replace(rules, max_segments=MAX_SEGMENTS)
    try:
        valid = Validator(rules, None).check(answer.channel, "+" + answer.to, text, None)
    except TooLong as exc:
        return Refused(ESME_RINVMSGLEN, str(exc))
    except Invalid as exc:
        return Refused(ESME_RINVSERTYP, str(exc))
    return Joined(valid.content, valid.encoding, valid.segments, answer.parts)


async def take(store: Store, part: NewPart, rules: Rules, wait_ms: int,
               wake: Wake) -> PartAnswer | Refused:
    """Store ``part``; if it is its message's last, with the message built from every part."""
    built: Joined | None = None
    for _ in range(_TRIES):
        answer = await store.store_part(part, built, wait_ms=wait_ms, wake=wake)
        if answer.kind != "need":
            return answer
        made = joined(answer, rules)
        if isinstance(made, Refused):
            return made
        built = made
    return PartAnswer("busy")


async def sweep(store: Store, rules: Rules, wait_ms: int,
                wake: Callable[[], Wake]) -> list[str]:
    """Send, as they are, the messages whose parts' wait is over; the channel of each message
    sent. Safe with several processes: the script makes each message once."""
    sent: list[str] = []
    for group in await store.due_groups(SWEEP_BATCH):
        built: Joined | None = None
        channel = ""
        for _ in range(_TRIES):
            answer = await store.sweep_group(group, built, wait_ms=wait_ms, wake=wake())
            if answer.kind != "need":
                break
            made = joined(answer, rules)
            if isinstance(made, Refused):  # kept, and tried again after another wait
                log.error("concatenated parts %s cannot be sent: %s", group, made.reason)
                await store.postpone_group(group, wait_ms)
                break
            built, channel = made, answer.channel
        if answer.kind == "sent":
            log.info("concatenated message %s sent incomplete after %d ms", answer.api_id,
                     wait_ms)
            sent.append(channel)
    return sent
