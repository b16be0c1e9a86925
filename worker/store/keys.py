"""The one place that spells Redis keys: the prefix, every key, and arq's own names.

Lua scripts get the prefix from here too (see scripts.py); none spells it.

Key schema (prefix ``smsgw:``; the ``{...}`` below are placeholders, except the hash tags).
Every key one script touches carries one Redis Cluster hash tag, so each script keeps to one
slot (docs/cluster.md has the table): messages and what their scripts touch with them carry
their shard's tag (``MESSAGES``, ``smsgw:{m0}:``: one shard for now), accounts, API keys and
their limits, numbers and SMPP users the configuration's (``CONFIG``, ``smsgw:{cfg}:``), a
channel's bind slots their channel's and kind's, an account's webhook leases their account's::

    on MESSAGES (smsgw:{m0}:): m:, c:, pending:, sched:, w:, ref:, dlr:, held:, heldq:, idform:,
        stats:, failures, mo:*, wh:{account}[:{shard}], wh:dead:, smpp:rcpt:,
        smpp:parts:, cb:, cp:* (copies of configuration the message scripts read)
    on CONFIG (smsgw:{cfg}:): key:, keys, acct:, children:, bucket:, quota:, numbers:,
        inbound:, wh:accounts, smpp:user:, smpp:users, smpp:accounts, copyv
    own tags: bind:{channel:kind}:{slot}, wh:lease:{account}[:{shard}]
    untagged (no script touches two of them): tps:, snap:, snaps, wh:procs, smpp:binds:,
        smpp:authfail:, smpp:dead:, smpp:deadcount:

    m:{id}                 hash  the message record (fields below)
    c:{account}:{cmid}     hash  clientMessageId index: recipient -> id, plus _fp and _at
    sched:{channel}        zset  id -> scheduledAt of a channel's scheduled messages (entries
                                 whose time has passed are dropped by the next accept)
    pending:{channel}      zset  id -> when the message is due: first send, retry, or a check
                                 that its holder is still alive (crash recovery)
    w:{worker}             str   heartbeat of a live worker (expires when it dies)
    tps:{channel}          hash  token bucket shared by every worker of a channel
    ref:{channel}:{to}     hash  concatenation refs in use for a destination: ref -> until_ms
                                 (freed once the message's parts are answered)
    bind:{channel}:{kind}:{slot} str  which worker holds a bind slot (the SMSC caps binds)
    mo:{id}                hash  a mobile-originated message (reassembled when concatenated)
    mo:list:{channel}      list  newest MO ids of a channel (capped)
    numbers:{channel}      hash  destination number (no leading '+') -> account that owns its MO
    cp:numbers:{channel}, cp:inbound:{channel}, cp:smpp:accounts  hash  a shard's copies of
                                 numbers:, inbound: and smpp:accounts, which record_mo.lua
                                 reads: field -> "{version}|{value}" ('' value: absent; for
                                 inbound: and smpp:accounts, "1": present)
    copyv                  str   the version of the last change of those (INCR by every script
                                 that changes them; see worker/store/copies.py)
    mo:parts:{channel}:{from}:{ref} hash  parts of a concatenated MO message, as received:
                                 seq -> "{data_coding}:{hex of the octets}"
    dlr:{smsc}:{smscid}    str   SMSC message id -> "{id}|{part}" (receipt correlation), where
                                 {smsc} is the channel's SMSC account (host:port:system_id), so
                                 a receipt finds its message from any channel of the account
    held:{smsc}:{smscid}   str   a receipt not matched yet (JSON): it arrived before its
                                 submit_sm_resp was recorded, or its id's forms left it in doubt
    heldq:{smsc}           list  receipts held in doubt, settled once idform is learned
    idform:{smsc}          str   the account's id convention: same, hex_to_dec or dec_to_hex
    key:{sha256}           hash  an API key, stored only as the hash of the secret
    keys                   hash  API key index: key id -> sha256 (listing without SCAN)
    acct:{account}         hash  an account: its optional parent (the Partner that owns it),
                                 created_at, and ownership: who set the parent, "Partner"
                                 (the Partner created the account) or "Admin"
    children:{account}     set   the accounts a Partner account owns
    bucket:{keyid}         hash  an API key's token bucket (messages), shared by all gateways
    quota:{keyid}:{day}    str   messages an API key sent on a UTC day (day number)
    events                 pubsub "{id} {status}" lines: a script run's transitions (and MO
                                 as "{id} mo") in one message; see parse_events()
    wh:*, inbound:*, mo:in:*  webhooks: see the "Webhooks" section at the end
    stats:{minute}         hash  "{channel}|{status}" -> transitions to it in that minute
                                 (minute = epoch ms // 60000; "accepted" for new messages)
    failures               list  newest messages that ended badly: [id, channel, status,
                                 detail, at_ms] as JSON (capped)
    snap:{worker}          str   a live worker's view of its binds (JSON), for the status page
    snaps                  zset  worker -> when its snapshot expires (listing without SCAN)
    smpp:*                 the SMPP server's: see worker/store/smpp_server.py and, for the
                           parts of messages its clients concatenate, worker/store/parts.py
"""

from __future__ import annotations

import hashlib

from arq.constants import default_queue_name, job_key_prefix

PREFIX = "smsgw:"


def shard_prefix(shard: int) -> str:
    """What starts the keys of one shard of messages: the prefix and the shard's hash tag
    ``{m<shard>}``, so that a script touching one shard's keys touches one cluster slot."""
    return f"{PREFIX}{{m{shard}}}:"


# The keys of messages and what their scripts touch with them (records, indexes, receipt
# correlation, counters, event streams, MO): one shard for now, so every script keeps to one
# slot; docs/cluster.md says what more shards need.
MESSAGES = shard_prefix(0)
# Accounts, API keys, numbers and SMPP users: configuration, on one tag of its own.
CONFIG = PREFIX + "{cfg}:"
EVENTS = PREFIX + "events"  # pub/sub: "{id} {status}" lines, see parse_events()
ARQ_QUEUE = default_queue_name  # arq's queue of job ids (a zset)
ARQ_JOB_PREFIX = job_key_prefix  # arq's job records


def pending_key(channel: str) -> str:
    """Due-time index of a channel's unfinished messages."""
    return f"{MESSAGES}pending:{channel}"


def scheduled_key(channel: str) -> str:
    """A channel's messages accepted with a scheduledAt (id -> its time), so the status page
    can tell them from those awaiting a receipt in the due index."""
    return f"{MESSAGES}sched:{channel}"


def worker_key(worker: str) -> str:
    """Heartbeat key of a live worker."""
    return f"{MESSAGES}w:{worker}"


def tps_key(channel: str) -> str:
    """Token bucket of a channel's shared TPS limit."""
    return f"{PREFIX}tps:{channel}"


def ref_key(channel: str, to: str) -> str:
    """Concatenation references in use for a destination."""
    return f"{MESSAGES}ref:{channel}:{to}"


def bind_key(channel: str, kind: str, slot: int) -> str:
    """Lease of one of a channel's bind slots (the slots of a kind share a hash tag: they are
    taken in one script)."""
    return f"{PREFIX}bind:{{{channel}:{kind}}}:{slot}"


def msg_key(api_id: str) -> str:
    """Key of a message record."""
    return f"{MESSAGES}m:{api_id}"


def cmid_key(account: str, cmid: str) -> str:
    """Key of the clientMessageId index of an account."""
    return f"{MESSAGES}c:{account}:{cmid}"


def dlr_key(smsc: str, smsc_id: str) -> str:
    """Key correlating an SMSC account's message id with a message part."""
    return f"{MESSAGES}dlr:{smsc}:{smsc_id}"


def held_key(smsc: str, smsc_id: str) -> str:
    """Key of a receipt of an SMSC account not matched yet, by one form of its id."""
    return f"{MESSAGES}held:{smsc}:{smsc_id}"


def id_form_key(smsc: str) -> str:
    """An SMSC account's learned receipt id convention."""
    return f"{MESSAGES}idform:{smsc}"


def snapshot_key(worker: str) -> str:
    """A live worker's published view of its binds."""
    return f"{PREFIX}snap:{worker}"


def stats_key(minute: int) -> str:
    """Per-minute transition counters (minute = epoch ms // 60000)."""
    return f"{MESSAGES}stats:{minute}"


ROUTE_STAT = "route:"  # what starts a route's fields in stats:{minute}


def route_stat(route: str, what: str) -> str:
    """A route's field in stats:{minute} (a channel's is "{channel}|{what}"): "routed:{channel}"
    counts the messages it sent to that channel at accept time, "failover" its messages' moves.
    The prefix keeps them apart from channels' fields (no channel is named "route:...")."""
    return f"{ROUTE_STAT}{route}|{what}"


SNAPSHOTS = PREFIX + "snaps"  # worker -> when its snapshot expires
FAILURES = MESSAGES + "failures"  # newest messages that ended badly


def api_key_key(secret_hash: str) -> str:
    """Key of an API key record, by the SHA-256 of the secret."""
    return f"{CONFIG}key:{secret_hash}"


def api_keys_index_key() -> str:
    """Index of every API key: key id -> hash of its secret (listing without SCAN)."""
    return f"{CONFIG}keys"


def account_key(account: str) -> str:
    """An account's record: its optional parent (the Partner account that owns it)."""
    return f"{CONFIG}acct:{account}"


def children_key(account: str) -> str:
    """The accounts a Partner account owns."""
    return f"{CONFIG}children:{account}"


def numbers_key(channel: str) -> str:
    """A channel's number assignments: destination (no leading '+') -> owning account."""
    return f"{CONFIG}numbers:{channel}"


def bucket_key(key_id: str) -> str:
    """Token bucket of an API key, shared by every gateway instance."""
    return f"{CONFIG}bucket:{key_id}"


def quota_key_prefix(key_id: str) -> str:
    """Prefix of an API key's daily message counters (the UTC day number follows)."""
    return f"{CONFIG}quota:{key_id}:"


def mo_key(mo_id: str) -> str:
    """A mobile-originated message."""
    return f"{MESSAGES}mo:{mo_id}"


def mo_list_key(channel: str) -> str:
    """Newest MO ids of a channel."""
    return f"{MESSAGES}mo:list:{channel}"


# --- Webhooks ----------------------------------------------------------------------------------
#
#   wh:{account}:{shard}  stream  events waiting for the account's URLs (consumer group
#                                 "hooks"), by message: shard = webhook_shard(its message or MO
#                                 id), so a message's events share one stream, in order;
#                                 written by move() and the MO script, deleted once delivered
#                                 (2xx) or dead-lettered
#   wh:{account}          stream  the one stream of an account before shards (still read until
#                                 empty; nothing new is written to it)
#   wh:dead:{account}     stream  events given up on after the max age, to list and replay
#   wh:accounts           set     accounts that ever had a callback or inbound URL (served)
#   wh:lease:{account}:{shard} str  the webhooks process that delivers a shard of the account
#   wh:lease:{account}    str     ... and the one delivering its unsharded stream
#   wh:procs              zset    live webhooks processes: owner -> when it is presumed dead
#                                 (ms), so each takes its fair share of every account's shards
#   wh:notify             pubsub  "{account} {delivered|dead|replayed} {eventId}" lines
#                                 (a message may carry several, one per line)
#   inbound:{channel}     hash    account -> inbound URL for the channel's MO messages
#   mo:in:{account}       list    newest MO ids the account owns (capped)
#   acct:{account}        hash    fields cb_url, cb_secret, in:{channel} (URL per channel);
#                                 cb_events (",delivered,failed,": the chosen statuses, absent:
#                                 every one, so a status not chosen is never written to the
#                                 stream), cb_batch (events per POST, absent: 1), cb_batch_ms
#                                 (linger, absent: the default), cb_v (the version of cb_url
#                                 and cb_events: bumped by every script that changes them)
#   cb:{account}          hash    on each shard of messages: the copy of those settings that
#                                 capture() in move.lua reads: v (the version copied), url
#                                 ("1" when a callback URL is set), events (as cb_events);
#                                 written after every change, and by a reconcile (copies.py)

WEBHOOK_GROUP = "hooks"
# One consumer name: a lease makes one process a stream's only deliverer, so a successor reads
# its predecessor's unacknowledged events with XREADGROUP ... 0, in order.
WEBHOOK_CONSUMER = "deliverer"
WEBHOOK_NOTIFY = PREFIX + "wh:notify"
# Streams per account: how many webhooks processes can share one account's events. Changing
# it moves messages between shards: only with no events waiting.
WEBHOOK_SHARDS = 8


def webhook_shard(message_id: str) -> int:
    """The shard of an account's events a message's (or MO message's) events go to; the same
    in the store's Lua (includes/webhooks.lua): the first 16 bits of SHA-1, modulo."""
    return int(hashlib.sha1(message_id.encode()).hexdigest()[:4], 16) % WEBHOOK_SHARDS


def webhook_stream_key(account: str, shard: int | None) -> str:
    """Events waiting for delivery to an account, of one shard (None: the unsharded stream
    events were written to before shards)."""
    return f"{MESSAGES}wh:{account}" if shard is None else f"{MESSAGES}wh:{account}:{shard}"


def dead_letter_key(account: str) -> str:
    """Events given up on for an account."""
    return f"{MESSAGES}wh:dead:{account}"


def callback_copy_key(account: str) -> str:
    """A shard's copy of an account's callback settings, which move() reads (the account's own
    record is on the configuration's slot); written by copy_callback.lua, newest version wins."""
    return f"{MESSAGES}cb:{account}"


# What starts a shard's copy of a configuration hash or set the MO script reads (numbers:,
# inbound:, smpp:accounts): "cp:" and the name of the copied key after CONFIG.
COPY = "cp:"


def copy_of(config_key: str) -> str:
    """A shard's copy of ``config_key`` (a key on CONFIG): each entry "{version}|{value}" (an
    empty value: absent), written by copy_entries.lua, newest version per entry wins."""
    if not config_key.startswith(CONFIG):
        raise ValueError(f"not a configuration key: {config_key}")
    return MESSAGES + COPY + config_key[len(CONFIG):]


def copy_version_key() -> str:
    """The version of the last change of configuration copied entry by entry (copy_of())."""
    return f"{CONFIG}copyv"


def webhook_accounts_key() -> str:
    """Accounts the webhooks process serves."""
    return f"{CONFIG}wh:accounts"


def webhook_lease_key(account: str, shard: int | None) -> str:
    """Which webhooks process delivers a shard of an account's events (None: its unsharded
    stream)."""
    base = f"{PREFIX}wh:lease:{{{account}}}"  # an account's shards are taken in one script
    return base if shard is None else f"{base}:{shard}"


def webhook_processes_key() -> str:
    """Live webhooks processes: owner -> when it is presumed dead (epoch ms)."""
    return f"{PREFIX}wh:procs"


def inbound_key(channel: str) -> str:
    """Inbound URLs of a channel's MO messages: account -> URL."""
    return f"{CONFIG}inbound:{channel}"


def mo_account_key(account: str) -> str:
    """Newest MO ids routed to an account."""
    return f"{MESSAGES}mo:in:{account}"


# --- the SMPP server (see worker/store/smpp_server.py) ---------------------------------------

RECEIPT_GROUP = "smpp"  # the consumer group of the smpp-server processes on smpp:rcpt:*


def user_key(system_id: str) -> str:
    """An SMPP user's record."""
    return f"{CONFIG}smpp:user:{system_id}"


def users_index_key() -> str:
    """system_id -> account, for every SMPP user."""
    return f"{CONFIG}smpp:users"


def smpp_accounts_key() -> str:
    """The accounts that have SMPP users, whose MO messages go to smpp:rcpt:{account} too
    (record_mo.lua reads the shard's copy of it, copy_of())."""
    return f"{CONFIG}smpp:accounts"


def binds_key(system_id: str) -> str:
    """The live binds of an SMPP user."""
    return f"{PREFIX}smpp:binds:{system_id}"


def auth_failures_key(address: str) -> str:
    """Recent wrong passwords from a remote address."""
    return f"{PREFIX}smpp:authfail:{address}"


PARTS_DUE = f"{MESSAGES}smpp:parts:due"  # concatenated parts' groups -> when their wait ends


def parts_key(account: str, source: str, to: str, ref_bits: int, ref: int) -> str:
    """The parts of one message an SMPP client concatenated itself (see store/parts.py)."""
    return f"{MESSAGES}smpp:parts:{account}:{source}:{to}:{ref_bits}:{ref}"


RECEIPTS_PREFIX = f"{MESSAGES}smpp:rcpt:"  # spelled in the store's transition Lua too


def receipts_key(account: str) -> str:
    """The stream of an account's receipts for its SMPP clients."""
    return RECEIPTS_PREFIX + account


def dead_key(account: str) -> str:
    """Receipts that aged out undelivered."""
    return f"{PREFIX}smpp:dead:{account}"


def dead_count_key(account: str) -> str:
    """How many receipts of an account ever aged out undelivered."""
    return f"{PREFIX}smpp:deadcount:{account}"
