"""Renaming a store written before hash tags (``smsgw:m:{id}``, ``smsgw:acct:{account}``, ...)
to the tagged names of keys.py (``smsgw:{m0}:m:{id}``, ``smsgw:{cfg}:acct:{account}``, ...).

SCAN and RENAMENX (a key keeps its value and its TTL), a page of keys per round trip; safe to
run again: a tagged name is never renamed, and an old key whose new name exists is left as it
is and reported. Run it with gateways, workers, webhooks and SMPP servers stopped (README,
"Operations -> Upgrading"). Heartbeats and leases (w:, bind:, wh:lease:) are not renamed: they
expire on their own. Then every account's callback settings, and every channel's numbers and
inbound URLs and the accounts with SMPP users, are copied to the shards of messages
(worker/store/copies.py): an old store has no copies, and the message scripts read only those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worker.store.copies import Copies
from worker.store.keys import CONFIG, MESSAGES, PARTS_DUE, PREFIX

# What a key's name started with after the prefix, by where its kind lives now (a kind
# without a trailing ':' is a whole name); the rest of the name is kept.
_MESSAGE_KINDS = ("m:", "c:", "pending:", "ref:", "dlr:", "held:", "heldq:", "idform:",
                  "stats:", "failures", "mo:", "wh:dead:", "smpp:rcpt:", "smpp:parts:")
_CONFIG_KINDS = ("key:", "keys", "acct:", "children:", "bucket:", "quota:", "numbers:",
                 "inbound:", "wh:accounts", "smpp:user:", "smpp:users", "smpp:accounts")
_NOT_STREAMS = ("wh:lease:", "wh:procs", "wh:accounts", "wh:dead:")


def _is(rest: str, kinds: tuple[str, ...]) -> bool:
    return any(rest.startswith(k) if k.endswith(":") else rest == k for k in kinds)


def new_name(old: str) -> str | None:
    """The tagged name of a key named before hash tags; None for any other key."""
    if not old.startswith(PREFIX) or old.startswith(PREFIX + "{"):
        return None
    rest = old[len(PREFIX):]
    if _is(rest, _MESSAGE_KINDS):
        return MESSAGES + rest
    if _is(rest, _CONFIG_KINDS):
        return CONFIG + rest
    if rest.startswith("wh:") and not _is(rest, _NOT_STREAMS):
        return MESSAGES + rest  # an account's webhook event stream, by shard or not
    return None


@dataclass
class Migration:
    """What a run renamed, the old keys it left because their new name was taken, and how
    many accounts' callback settings and MO lookups' entries it copied to the shards of
    messages."""

    renamed: int = 0
    conflicts: list[str] = field(default_factory=list)
    copied: int = 0
    copied_mo: int = 0  # entries of the MO lookups' copies


async def migrate(redis: Redis, page: int = 1000) -> Migration:
    """Rename every old key of the store to its tagged name (see the module's docstring)."""
    done = Migration()
    accounts: set[str] = set()
    channels: set[str] = set()
    cursor = None
    while cursor != 0:
        cursor, raw = await redis.scan(cursor or 0, match=PREFIX + "*", count=page)
        names = [k.decode() for k in raw]
        accounts.update(a for n in names if (a := _named(n, "acct:")) is not None)
        channels.update(c for n in names for kind in ("numbers:", "inbound:")
                        if (c := _named(n, kind)) is not None)
        pairs = [(old, new) for old in names if (new := new_name(old)) is not None]
        if not pairs:
            continue
        pipe = redis.pipeline(transaction=False)
        for old, new in pairs:
            pipe.renamenx(old, new)
        for (old, _), ok in zip(pairs, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(ok, ResponseError):
                continue  # expired since the SCAN: nothing left to rename
            if ok:
                done.renamed += 1
            else:
                done.conflicts.append(old)
    done.conflicts.sort()
    await _rename_due_groups(redis)
    copies = Copies(redis)
    done.copied = await copies.reconcile_callbacks(accounts)
    done.copied_mo = await copies.reconcile_mo(channels)
    return done


def _named(name: str, kind: str) -> str | None:
    """What a key of ``kind`` (``acct:``, ``numbers:``, ..., old or tagged name) is of."""
    for prefix in (PREFIX + kind, CONFIG + kind):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


async def _rename_due_groups(redis: Redis) -> None:
    """The parts' due index names its groups by key: give its members their new names too."""
    due = await redis.zrange(PARTS_DUE, 0, -1, withscores=True)
    renamed = {new: at for old, at in due if (new := new_name(old.decode())) is not None}
    if renamed:
        pipe = redis.pipeline(transaction=True)
        pipe.zadd(PARTS_DUE, renamed)
        pipe.zrem(PARTS_DUE, *(old for old, _ in due if new_name(old.decode())))
        await pipe.execute()
