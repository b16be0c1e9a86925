"""Webhooks: targets, event streams, dead letters and delivery leases.

An account's events are in ``WEBHOOK_SHARDS`` streams, by message (keys.webhook_shard), each
delivered by one process at a time (a lease per shard), so several processes share a busy
account and a message's events still go in order. ``shard=None`` names the one stream of an
account written before shards, read until it is empty."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis.exceptions
from redis.asyncio import Redis

from worker.store import scripts
from worker.store.base import _decode, _text, now_ms
from worker.store.copies import CallbackSettings, Copies
from worker.store.keys import (
    WEBHOOK_CONSUMER,
    WEBHOOK_GROUP,
    account_key,
    dead_letter_key,
    inbound_key,
    mo_account_key,
    mo_key,
    webhook_accounts_key,
    webhook_lease_key,
    webhook_processes_key,
    webhook_stream_key,
)
from worker.store.records import DeadLetter, WebhookEvent, WebhookTargets
from worker.webhooks import CallbackOptions


class WebhookStore:
    """Webhook configuration, event streams, dead letters and delivery leases."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._set_target = scripts.register(redis, "set_webhook_target")
        self._done = scripts.register(redis, "webhook_done")
        self._replay = scripts.register(redis, "replay_dead_letters")
        self._acquire = scripts.register(redis, "acquire_lease")
        self._renew = scripts.register(redis, "renew_lease")
        self._release = scripts.register(redis, "release_lease")
        self._set_options = scripts.register(redis, "set_callback_options")
        self._ack_many = scripts.register(redis, "acknowledge_webhooks")
        self._copies = Copies(redis)

    async def set_callback(
        self, account: str, url: str, *, new_secret: str, rotate: bool = False
    ) -> str | None:
        """Set ('' clears) an account's callback URL; None if the account is unknown, else the
        signing secret if it was set now (first URL of the account, or ``rotate``), else ''."""
        return await self._set(account, "cb_url", url, None, new_secret, rotate)

    async def set_inbound(
        self, account: str, channel: str, url: str, *, new_secret: str, rotate: bool = False
    ) -> str | None:
        """Set ('' clears) an account's inbound URL for a channel's MO messages; as
        :meth:`set_callback`."""
        return await self._set(account, f"in:{channel}", url, inbound_key(channel), new_secret,
                               rotate)

    async def _set(self, account: str, fld: str, url: str, index: str | None, secret: str,
                   rotate: bool) -> str | None:
        keys = [account_key(account), webhook_accounts_key()]
        raw = await self._set_target(
            keys=keys if index is None else [*keys, index],
            args=[fld, url, account, secret, "1" if rotate else "0"])
        if raw is None:
            return None
        # the shards' copies follow (worker/store/copies.py)
        if index is None:
            await self._copies.copy_callbacks({account: CallbackSettings.from_reply(raw[1:])})
        else:
            await self._copies.copy_entries(index, int(raw[1]), {account: "1" if url else ""})
        return _text(raw[0])

    async def targets(self, account: str) -> WebhookTargets | None:
        """An account's URLs and secret; None if the account is unknown."""
        return (await self.targets_many([account]))[0]

    async def targets_many(self, accounts: Sequence[str]) -> list[WebhookTargets | None]:
        """:meth:`targets` of each account, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for account in accounts:
            pipe.hgetall(account_key(account))
        rows = await pipe.execute() if accounts else []
        return [_targets(account, row) for account, row in zip(accounts, rows, strict=True)]

    async def hooked_accounts(self) -> list[str]:
        """Every account that ever had a webhook URL."""
        return sorted(_text(a) for a in await self._redis.smembers(  # type: ignore[misc]
            webhook_accounts_key()))

    async def ensure_group(self, account: str, shard: int | None) -> None:
        """Create a shard's stream and consumer group (reading from its start) if needed."""
        try:
            await self._redis.xgroup_create(webhook_stream_key(account, shard), WEBHOOK_GROUP,
                                            id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_events(
        self, cursors: Mapping[tuple[str, int | None], str], *, count: int, block_ms: int | None
    ) -> list[WebhookEvent]:
        """Events of several (account, shard) streams in one call, at most ``count`` of each. A
        cursor of ``">"`` reads new events (and may block); any other id re-reads the
        unacknowledged events after it."""
        if not cursors:
            return []
        named = {webhook_stream_key(a, s): (a, s) for a, s in cursors}
        streams = {webhook_stream_key(a, s): c for (a, s), c in cursors.items()}
        rows = await self._redis.xreadgroup(WEBHOOK_GROUP, WEBHOOK_CONSUMER, streams,  # type: ignore[arg-type]
                                            count=count, block=block_ms)
        return [
            WebhookEvent(account=named[_text(stream)][0], entry_id=_text(entry_id),
                         fields=_decode(values) if values else None,
                         shard=named[_text(stream)][1])
            for stream, entries in rows or []
            for entry_id, values in entries
        ]

    async def unsharded_backlog(self, accounts: Sequence[str]) -> dict[str, int]:
        """How many events wait in each account's stream of before shards (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        for account in accounts:
            pipe.xlen(webhook_stream_key(account, None))
        return dict(zip(accounts, map(int, await pipe.execute()), strict=True))

    async def dead_letter(
        self, event: WebhookEvent, event_id: str, *, reason: str, attempts: int
    ) -> None:
        """Give up on the event: move it to the account's dead letters, atomically."""
        keep = dict(event.fields or {})
        keep.update(reason=reason, attempts=str(attempts), dead_at=str(now_ms()),
                    queued_at=str(event.queued_ms))
        flat = [x for pair in keep.items() for x in pair]
        await self._done(keys=[webhook_stream_key(event.account, event.shard),
                               dead_letter_key(event.account)],
                         args=[event.entry_id, event_id, event.account, "dead", *flat])

    async def dead_letters(self, account: str, limit: int) -> list[DeadLetter]:
        """An account's newest dead letters, newest first."""
        rows = await self._redis.xrevrange(dead_letter_key(account), count=limit)
        return [DeadLetter(dead_id=_text(i), account=account, fields=_decode(f)) for i, f in rows]

    async def replay(self, account: str, dead_ids: Sequence[str] = ()) -> int:
        """Queue dead letters (all, or those listed) for delivery again, each in its message's
        shard; how many were."""
        return int(await self._replay(keys=[dead_letter_key(account)], args=[account, *dead_ids]))

    async def acquire_lease(self, account: str, shards: Sequence[int | None], owner: str,
                            ttl_ms: int) -> int:
        """Become the deliverer of the first of an account's ``shards`` no live process
        delivers: its position in ``shards``, or -1 if every one is taken."""
        if not shards:
            return -1
        return int(await self._acquire(keys=[webhook_lease_key(account, s) for s in shards],
                                       args=[owner, ttl_ms]))

    async def renew_leases(self, leases: Sequence[tuple[str, int | None]], owner: str,
                           ttl_ms: int) -> list[bool]:
        """Extend held leases of (account, shard) in one round trip; False for each lost."""
        if not leases:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for account, shard in leases:
            await self._renew(keys=[webhook_lease_key(account, shard)], args=[owner, ttl_ms],
                              client=pipe)
        return [bool(r) for r in await pipe.execute()]

    async def release_lease(self, account: str, shard: int | None, owner: str) -> None:
        """Hand a shard of the account over at once (clean stop, or a fair share given)."""
        await self._release(keys=[webhook_lease_key(account, shard)], args=[owner])

    async def alive(self, owner: str, ttl_ms: int) -> int:
        """Declare the webhooks process ``owner`` alive for ``ttl_ms``; how many are."""
        now = now_ms()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(webhook_processes_key(), {owner: now + ttl_ms})
        pipe.zremrangebyscore(webhook_processes_key(), "-inf", now)
        pipe.zcard(webhook_processes_key())
        *_, live = await pipe.execute()
        return int(live)

    async def gone(self, owner: str) -> None:
        """The process ``owner`` stops: the others take its shares at once."""
        await self._redis.zrem(webhook_processes_key(), owner)

    async def account_mo(self, account: str, limit: int) -> list[dict[str, str]]:
        """The newest MO messages an account owns, newest first."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(mo_account_key(account), 0, limit - 1)
        (ids,) = await pipe.execute()
        for mo_id in ids:
            pipe.hgetall(mo_key(_text(mo_id)))
        return [_decode(row) for row in await pipe.execute() if row] if ids else []

    # --- callback options and batched acknowledgements (issue 14) ---------------------------

    async def set_callback_options(
        self, account: str, *, events: Sequence[str] | None, max_batch: int | None,
        max_batch_delay_ms: int | None,
    ) -> bool:
        """Choose the callback's statuses (``events``: None keeps them, ``()`` every status)
        and batches (None keeps a value); False if the account is unknown."""
        chosen = "" if events is None else "*" if not events else f",{','.join(events)},"
        return await self._options(account, chosen, "" if max_batch is None else max_batch,
                                   "" if max_batch_delay_ms is None else max_batch_delay_ms)

    async def clear_callback_options(self, account: str) -> None:
        """Back to every status, one event per POST (the callback was cleared)."""
        await self._options(account, "*", "-", "-")

    async def _options(self, account: str, *args: str | int) -> bool:
        raw = await self._set_options(keys=[account_key(account)], args=args)
        if not raw:
            return False
        await self._copies.copy_callbacks({account: CallbackSettings.from_reply(raw)})
        return True

    async def reconcile_copies(self, channels: Sequence[str]) -> int:
        """The shards' copies of every served account's callback settings, and of what the
        MO script reads for ``channels``, made current (see worker/store/copies.py); how many
        copies or entries were written."""
        return (await self._copies.reconcile_callbacks()
                + await self._copies.reconcile_mo(channels))

    async def acknowledge(
        self, acks: Mapping[tuple[str, int | None], Sequence[tuple[str, str]]]
    ) -> None:
        """Events (entry id, event id) that reached their URL, by (account, shard): each
        shard's acknowledged and deleted in one step and announced on ``wh:notify`` in one
        message (a line each); every shard in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for (account, shard), events in acks.items():
            if events:
                await self._ack_many(keys=[webhook_stream_key(account, shard)],
                                     args=[account, *(x for pair in events for x in pair)],
                                     client=pipe)
        await pipe.execute()


def _targets(account: str, row: Mapping[Any, Any]) -> WebhookTargets | None:
    if not row:
        return None
    f = _decode(row)
    return WebhookTargets(
        account=account, callback_url=f.get("cb_url", ""), secret=f.get("cb_secret", ""),
        inbound={k[3:]: v for k, v in f.items() if k.startswith("in:")},
        options=_callback_options(f))


def _callback_options(f: Mapping[str, str]) -> CallbackOptions:
    chosen = f.get("cb_events")
    batch, delay = f.get("cb_batch", ""), f.get("cb_batch_ms", "")
    default = CallbackOptions()
    return CallbackOptions(
        events=None if chosen is None else frozenset(s for s in chosen.split(",") if s),
        max_batch=int(batch) if batch.isdigit() else default.max_batch,
        max_batch_delay_ms=int(delay) if delay.isdigit() else default.max_batch_delay_ms)
