"""Messages and their lifecycle: accept, claim, outcomes, receipts, expiry, lookups."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import redis.exceptions
from pydantic_core import to_json

from worker.store.base import StoreBase, _decode, _text, now_ms
from worker.store.bounds import ACCEPT_GRACE_MS
from worker.store.keys import (
    ARQ_JOB_PREFIX,
    ARQ_QUEUE,
    bucket_key,
    cmid_key,
    msg_key,
    pending_key,
    quota_key_prefix,
)
from worker.store.records import (
    AcceptCall,
    AcceptResult,
    Claimed,
    Expiry,
    KeyLimits,
    LimitExceeded,
    NewMessage,
    Outcome,
    ReceiptEvent,
    Record,
)


class Messages(StoreBase):
    """Accepting, claiming and settling messages, and reading their records."""

    async def accept(
        self,
        messages: Sequence[NewMessage],
        *,
        window_seconds: int,
        job_id: str,
        job_payload: bytes,
        job_expiry_seconds: int,
        accepted_at: int | None = None,
    ) -> list[AcceptResult]:
        """Store messages and enqueue their job atomically, in one round trip (no key limits).
        ``accepted_at`` (epoch ms, now by default) dates them, as for messages accepted
        elsewhere and imported: their age, and so their max age, counts from it."""
        if not messages:
            return []
        (result,) = await self._accept_many(
            [AcceptCall(None, messages, window_seconds, job_id, job_payload,
                        job_expiry_seconds)], now_ms() if accepted_at is None else accepted_at)
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, list)  # no limits, so never refused by one
        return result

    async def accept_within(
        self,
        limits: KeyLimits,
        messages: Sequence[NewMessage],
        *,
        window_seconds: int,
        job_id: str,
        job_payload: bytes,
        job_expiry_seconds: int,
    ) -> list[AcceptResult] | LimitExceeded:
        """:meth:`accept` behind the key's token bucket and daily quota, in the same script and
        round trip: over a limit, nothing is stored. Every recipient costs one token, unless the
        idempotency index answers it (a retry sends nothing, so it costs nothing)."""
        (result,) = await self.accept_within_many([AcceptCall(
            limits, messages, window_seconds, job_id, job_payload, job_expiry_seconds)])
        if isinstance(result, Exception):
            raise result
        return result

    async def accept_within_many(
        self, calls: Sequence[AcceptCall]
    ) -> list[list[AcceptResult] | LimitExceeded | Exception]:
        """Several requests' :meth:`accept_within` (or :meth:`accept`, without limits) in one
        run of the accept script and one round trip, each still all-or-nothing; a request's
        refusal or error is its result, not the others'. The wake-up job enqueued is the last
        request's."""
        return await self._accept_many(calls, now_ms())

    async def _accept_many(
        self, calls: Sequence[AcceptCall], now: int
    ) -> list[list[AcceptResult] | LimitExceeded | Exception]:
        todo = [c for c in calls if c.messages]
        if not todo:
            return [[] for _ in calls]
        answers = iter(json.loads(await self._durably(
            self._accept, keys=[ARQ_JOB_PREFIX + todo[-1].job_id, ARQ_QUEUE],
            args=self._accept_args(todo, now))))
        return [_accept_answer(next(answers), c) if c.messages else [] for c in calls]

    def _accept_args(self, calls: Sequence[AcceptCall], now: int) -> list[Any]:
        """ARGV of the accept script for ``calls`` (none of them empty)."""
        last = calls[-1]
        requests = [_accept_request(c) for c in calls]
        return [now, self._retention, ACCEPT_GRACE_MS, last.job_id, last.job_payload,
                last.job_expiry_seconds * 1000, to_json(requests)]  # see record_outcomes

    async def claim(
        self, ids: Sequence[str], *, worker: str, lease_ms: int, served: Sequence[str]
    ) -> list[Claimed]:
        """Move due messages of ``served`` channels to sending (also those of dead holders)."""
        if not ids:
            return []
        now = now_ms()
        raw = await self._claim(args=[now, now + lease_ms, worker, json.dumps(list(served)),
                                      *ids])
        return [
            Claimed(api_id=i, channel=ch, to=to, content=c, attempts=int(a),
                    accepted_at=int(at), reclaimed=bool(r), route=rt, scheduled_at=int(sa),
                    valid_until=int(vu), sender=sender[0] if sender else "")
            for i, ch, to, c, a, at, r, rt, sa, vu, *sender in json.loads(raw)
        ]

    async def record_outcomes(
        self, outcomes: Sequence[Outcome], *, dlr_ttl_seconds: int,
        smsc_accounts: Mapping[str, str] | None = None,
    ) -> int:
        """Record submit results for a batch of messages in one round trip.

        ``smsc_accounts``: channel -> its SMSC account (receipts of any channel of an account
        find its messages); a channel missing from it is an account of its own.
        """
        if not outcomes:
            return 0
        accounts = smsc_accounts or {}
        payload = [
            {"id": o.api_id, "channel": o.channel, "smsc": accounts.get(o.channel, o.channel),
             "ids": list(o.smsc_ids), "status": str(o.status), "code": o.error_code,
             "text": o.error_text, "retry_at": o.retry_at, "attempted": o.attempted,
             "receipt_wait": o.receipt_wait_ms}
            for o in outcomes
        ]
        # to_json: the same JSON for cjson as json.dumps (UTF-8 rather than \u escapes), faster
        return int(await self._durably(self._outcomes,
                                       args=[now_ms(), dlr_ttl_seconds, to_json(payload)]))

    async def record_receipts(
        self, receipts: Sequence[ReceiptEvent], *, held_ttl_seconds: int
    ) -> list[str]:
        """Correlate and apply receipts; per receipt the message id, 'held' or 'ignored'.

        In auto mode a receipt's id has several forms; it is applied only by the one its SMSC
        account's convention gives, learned from the first receipt matching under exactly one
        form (see lua/includes/match.lua). Until then one in doubt is held, never guessed.
        """
        if not receipts:
            return []
        now = now_ms()
        payload = [
            {"smsc": r.smsc or r.channel, "forms": dict(r.forms), "twice": r.spelled_twice,
             "state": str(r.state) if r.state else "", "stat": r.stat, "err": r.err,
             "at": r.at or now}
            for r in receipts
        ]
        raw = await self._durably(self._receipts, args=[held_ttl_seconds, to_json(payload)])
        return list(json.loads(raw))

    async def expire_queued(
        self, channel: str, *, max_age_ms: int, text: str, start: int, limit: int,
        validity_text: str = "validity period ended",
    ) -> Expiry:
        """One bounded pass of the expiry sweep over a channel with no bind up: of at most
        ``limit`` due entries of its index from rank ``start``, fail (``Expired``, ``text``)
        the queued messages older than ``max_age_ms`` (a scheduled one: counted from its
        time), and (``Expired``, ``validity_text``) those whose validity has ended. Atomic, so
        passes of several workers and a claim at the same moment never act twice on one."""
        failed, next_start = await self._durably(
            self._expire_queued,
            args=[now_ms(), channel, max_age_ms, start, limit, text, validity_text])
        return Expiry(failed=[_text(i) for i in failed], next_start=int(next_start))

    async def due(self, channels: Sequence[str], limit: int) -> list[str]:
        """Ids of ``channels`` whose due time has passed (retries, crash recovery)."""
        now = now_ms()
        pipe = self._redis.pipeline(transaction=False)
        for channel in channels:
            pipe.zrangebyscore(pending_key(channel), "-inf", now, start=0, num=limit)
        rows: list[list[bytes]] = await pipe.execute()
        return [r.decode() for row in rows for r in row]

    async def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records by apiMessageId, in order; None where unknown or expired."""
        pipe = self._redis.pipeline(transaction=False)
        for api_id in ids:
            pipe.hgetall(msg_key(api_id))
        rows: list[Mapping[Any, Any]] = await pipe.execute()
        return [Record(api_id=i, fields=_decode(row)) if row else None
                for i, row in zip(ids, rows, strict=True)]

    async def find_by_cmid(self, account: str, cmid: str) -> list[Record]:
        """Every recipient's record for a clientMessageId of an account."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(cmid_key(account, cmid))
        (row,) = await pipe.execute()
        index = _decode(row)
        ids = [v for k, v in index.items() if not k.startswith("_")]
        return [r for r in await self.get(ids) if r is not None]


def _accept_request(call: AcceptCall) -> dict[str, Any]:
    """One request as the accept script reads it."""
    request: dict[str, Any] = {"w": call.window_seconds * 1000, "m": [
        _accept_message(m) for m in call.messages]}
    lim = limits_arg(call.limits)
    if lim is not None:
        request["lim"] = lim
    return request


def limits_arg(lim: KeyLimits | None) -> list[Any] | None:
    """A key's limits as the scripts read them (includes/limits.lua); None: none to check."""
    if lim is None or not (lim.rate or lim.daily_quota):  # a key without limits checks none
        return None
    return [bucket_key(lim.key_id), quota_key_prefix(lim.key_id), lim.rate, lim.burst,
            lim.daily_quota]


def _accept_message(m: NewMessage) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": m.api_id, "account": m.account, "cmid": m.cmid, "fp": m.fingerprint,
        "channel": m.channel, "to": m.to, "content": m.content, "enc": m.encoding,
        "seg": m.segments}
    if m.door:  # the bulk carries no door fields
        msg.update(door=m.door, notify=m.notify, src=m.source)
    return msg | optional_fields(m)


def optional_fields(m: NewMessage) -> dict[str, Any]:
    """What only some messages have, as accept.lua (and store_part.lua) read it: none of it
    is sent for a message without it."""
    got: dict[str, Any] = {}
    if m.route:
        got.update(rt=m.route, ch=m.chain)
    if m.sender:
        got["snd"] = m.sender
    if m.scheduled_at:
        got["at"] = m.scheduled_at
    if m.valid_until:
        got["vu"] = m.valid_until
    return got


def _accept_answer(
    answer: Any, call: AcceptCall
) -> list[AcceptResult] | LimitExceeded | Exception:
    """One request's answer from the accept script."""
    if "k" in answer:
        refs = iter(answer["r"])  # earlier ids of the duplicates, in order
        return [AcceptResult(api_id=m.api_id) if kind == "n" else
                AcceptResult(api_id=next(refs), duplicate=True) if kind == "d" else
                AcceptResult(api_id="", conflict=True)
                for m, kind in zip(call.messages, answer["k"], strict=True)]
    if "err" in answer:
        return redis.exceptions.ResponseError(answer["err"])
    return LimitExceeded(reason=answer["limited"], retry_after_ms=math.ceil(answer["retry_ms"]))
