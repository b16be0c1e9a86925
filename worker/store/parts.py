"""Messages an SMPP client concatenated itself: their parts, held until the last arrives.

Key schema (prefix ``smsgw:``; spelled in keys.py)::

    smpp:parts:{account}:{src}:{to}:{bits}:{ref}  hash  one message's parts as they arrive:
                       id, total, dc, first (ms), account, channel, to, notify, src; p:{seq}
                       the part's octets and d:{seq} their SHA-1. Once the message is made,
                       only done and the d:{seq} stay, for the wait (a part sent again)
    smpp:parts:due     zset  group key -> when its wait ends (the sweep sends what arrived)

One script, lua/store_part.lua, stores a part, or makes the message from the group: see it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from worker.store.base import StoreBase, _text, now_ms
from worker.store.bounds import ACCEPT_GRACE_MS
from worker.store.keys import ARQ_JOB_PREFIX, ARQ_QUEUE, PARTS_DUE, parts_key
from worker.store.messages import limits_arg, optional_fields
from worker.store.records import KeyLimits, NewMessage


@dataclass(frozen=True, slots=True)
class NewPart:
    """One part of a concatenated message. ``message`` carries what every part of it shares
    (account, channel, to, notify, source) and the id the message takes if this part is its
    group's first; its content is not used."""

    message: NewMessage
    ref_bits: int  # 8 or 16 (UDH 16-bit and SAR): the same number names different messages
    ref: int
    total: int
    seq: int  # 1-based
    data_coding: int
    octets: bytes  # the part's text, after its UDH
    limits: KeyLimits | None = None

    @property
    def group(self) -> str:
        """The key of its message's group."""
        m = self.message
        return parts_key(m.account, m.source, m.to, self.ref_bits, self.ref)


@dataclass(frozen=True, slots=True)
class Joined:
    """The message's text built from ``parts`` (seq, octets): what the script stores."""

    content: str
    encoding: str
    segments: int
    parts: Sequence[tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class Wake:
    """The wake-up job enqueued with a message made (see worker.jobs.wake_job)."""

    job_id: str
    payload: bytes
    expiry_seconds: int


@dataclass(frozen=True, slots=True)
class PartAnswer:
    """What the script did: see the Output of lua/store_part.lua. For ``need``, the parts
    (seq, octets, in order) and what the message is built with."""

    kind: str
    api_id: str = ""
    reason: str = ""
    retry_ms: int = 0
    total: int = 0
    data_coding: int = 0
    channel: str = ""
    to: str = ""
    parts: tuple[tuple[int, bytes], ...] = ()


class ConcatParts(StoreBase):
    """Storing parts, and sweeping the groups whose wait ran out."""

    async def store_part(self, part: NewPart, joined: Joined | None, *, wait_ms: int,
                         wake: Wake) -> PartAnswer:
        """Store ``part``, or (the last one, with ``joined`` built from the parts the script
        asked for) make its message, in one script run."""
        m = part.message
        info: dict[str, Any] = {
            "id": m.api_id, "account": m.account, "channel": m.channel, "to": m.to,
            "notify": m.notify, "src": m.source, "total": part.total, "seq": part.seq,
            "dc": part.data_coding, **optional_fields(m)}  # the first part's are the message's
        lim = limits_arg(part.limits)
        if lim is not None:
            info["lim"] = lim
        return await self._run_part(part.group, info, part.octets, joined, wait_ms, wake)

    async def sweep_group(self, group: str, joined: Joined | None, *, wait_ms: int,
                          wake: Wake) -> PartAnswer:
        """Send what arrived of a group whose wait is over (``joined`` built from the parts
        the script asked for); 'gone' when it was sent meanwhile, 'early' if not over."""
        return await self._run_part(group, {"seq": 0}, b"", joined, wait_ms, wake)

    async def due_groups(self, limit: int) -> list[str]:
        """Keys of the groups whose wait is over, oldest first."""
        keys = await self._redis.zrangebyscore(PARTS_DUE, "-inf", now_ms(), start=0,
                                               num=limit)
        return [_text(k) for k in keys]

    async def postpone_group(self, group: str, wait_ms: int) -> None:
        """Sweep a group again only after another wait, of a minute at least (one that cannot
        be sent now must not hold up the groups behind it, nor fill the log)."""
        await self._redis.zadd(PARTS_DUE, {group: now_ms() + max(wait_ms, 60_000)}, xx=True)

    async def _run_part(self, group: str, info: dict[str, Any], octets: bytes,
                        joined: Joined | None, wait_ms: int, wake: Wake) -> PartAnswer:
        built = "" if joined is None else json.dumps({
            "content": joined.content, "enc": joined.encoding, "seg": joined.segments,
            "sum": parts_sum(joined.parts)}, ensure_ascii=False)
        raw = await self._durably(
            self._store_part, keys=[group, PARTS_DUE, ARQ_JOB_PREFIX + wake.job_id, ARQ_QUEUE],
            args=[now_ms(), self._retention, ACCEPT_GRACE_MS, wake.job_id, wake.payload,
                  wake.expiry_seconds * 1000, wait_ms, json.dumps(info), octets, built])
        return _answer(raw)


def parts_sum(parts: Sequence[tuple[int, bytes]]) -> str:
    """What the script compares to know a message was built from the parts it holds."""
    return "".join(f"{seq}:{hashlib.sha1(octets).hexdigest()}," for seq, octets in parts)


def _answer(raw: list[Any]) -> PartAnswer:
    kind = _text(raw[0])
    if kind in ("stored", "again", "sent"):
        return PartAnswer(kind, api_id=_text(raw[1]))
    if kind == "refused":
        return PartAnswer(kind, reason=_text(raw[1]))
    if kind == "limited":
        return PartAnswer(kind, reason=_text(raw[1]), retry_ms=int(raw[2]))
    if kind == "need":
        rest = raw[6:]
        return PartAnswer(kind, api_id=_text(raw[1]), total=int(raw[2]),
                          data_coding=int(raw[3]), channel=_text(raw[4]), to=_text(raw[5]),
                          parts=tuple((int(s), bytes(o)) for s, o in zip(rest[::2], rest[1::2],
                                                                        strict=True)))
    return PartAnswer(kind)
