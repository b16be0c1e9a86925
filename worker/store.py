"""The only module that spells Redis keys: message records, indexes, receipts map, leases.

Every write that must be all-or-nothing is one Lua script, so a request or a batch of outcomes
costs one round trip whatever its size, and a crash can never leave half a record.

Key schema (prefix ``smsgw:``)::

    m:{id}                 hash  the message record (fields below)
    c:{account}:{cmid}     hash  clientMessageId index: recipient -> id, plus _fp and _at
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
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis.exceptions
from pydantic_core import to_json
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from worker.encoding import decode_text
from worker.lifecycle import ALLOWED, FINAL, SEVERITY, Status
from worker.webhooks import CallbackOptions

PREFIX = "smsgw:"
# What a Redis outage looks like to callers: retry, degrade, or answer 503 — never crash.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
ACCEPT_GRACE_MS = 0  # due at once: the wake-up job, or any worker's reaper, claims it
EVENTS = PREFIX + "events"  # pub/sub: "{id} {status}" lines, see parse_events()
ARQ_QUEUE = "arq:queue"
ARQ_JOB_PREFIX = "arq:job:"


def pending_key(channel: str) -> str:
    """Due-time index of a channel's unfinished messages."""
    return f"{PREFIX}pending:{channel}"


def worker_key(worker: str) -> str:
    """Heartbeat key of a live worker."""
    return f"{PREFIX}w:{worker}"


def tps_key(channel: str) -> str:
    """Token bucket of a channel's shared TPS limit."""
    return f"{PREFIX}tps:{channel}"


def ref_key(channel: str, to: str) -> str:
    """Concatenation references in use for a destination."""
    return f"{PREFIX}ref:{channel}:{to}"


def bind_key(channel: str, kind: str, slot: int) -> str:
    """Lease of one of a channel's bind slots."""
    return f"{PREFIX}bind:{channel}:{kind}:{slot}"


def msg_key(api_id: str) -> str:
    """Key of a message record."""
    return f"{PREFIX}m:{api_id}"


def cmid_key(account: str, cmid: str) -> str:
    """Key of the clientMessageId index of an account."""
    return f"{PREFIX}c:{account}:{cmid}"


def dlr_key(smsc: str, smsc_id: str) -> str:
    """Key correlating an SMSC account's message id with a message part."""
    return f"{PREFIX}dlr:{smsc}:{smsc_id}"


def held_key(smsc: str, smsc_id: str) -> str:
    """Key of a receipt of an SMSC account not matched yet, by one form of its id."""
    return f"{PREFIX}held:{smsc}:{smsc_id}"


def id_form_key(smsc: str) -> str:
    """An SMSC account's learned receipt id convention."""
    return f"{PREFIX}idform:{smsc}"


def snapshot_key(worker: str) -> str:
    """A live worker's published view of its binds."""
    return f"{PREFIX}snap:{worker}"


def stats_key(minute: int) -> str:
    """Per-minute transition counters (minute = epoch ms // 60000)."""
    return f"{PREFIX}stats:{minute}"


SNAPSHOTS = PREFIX + "snaps"  # worker -> when its snapshot expires
FAILURES = PREFIX + "failures"  # newest messages that ended badly
HELD_QUEUE_MAX = 10_000  # receipts held in doubt per SMSC account (newest kept)
QUEUE_HORIZON_MS = 60_000  # pending entries due sooner wait for a worker; later: a receipt


def api_key_key(secret_hash: str) -> str:
    """Key of an API key record, by the SHA-256 of the secret."""
    return f"{PREFIX}key:{secret_hash}"


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every stored timestamp."""
    return time.time_ns() // 1_000_000


def parse_events(data: bytes | str) -> list[tuple[str, str]]:
    """(id, status) of every line of one message published on :data:`EVENTS`."""
    text = data.decode() if isinstance(data, bytes) else data
    return [(i, status) for i, _, status in (line.partition(" ") for line in text.split("\n"))]


# --- values crossing the store boundary -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message for one recipient, ready to be stored."""

    api_id: str
    account: str
    channel: str
    to: str
    content: str
    encoding: str
    segments: int
    cmid: str = ""
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class AcceptCall:
    """One request's arguments to :meth:`Store.accept_within` (no limits: :meth:`accept`)."""

    limits: KeyLimits | None
    messages: Sequence[NewMessage]
    window_seconds: int
    job_id: str
    job_payload: bytes
    job_expiry_seconds: int


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Outcome of storing one NewMessage: its id (maybe an earlier one) or a conflict."""

    api_id: str
    duplicate: bool = False
    conflict: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message a worker has claimed for sending."""

    api_id: str
    channel: str
    to: str
    content: str
    attempts: int  # spent before this claim (submits that reached the SMSC)
    accepted_at: int
    reclaimed: bool  # the previous holder died: its submit may have reached the SMSC


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of submitting every part of a message."""

    api_id: str
    channel: str
    smsc_ids: Sequence[str] = ()
    status: Status = Status.SUBMITTED  # SUBMITTED, QUEUED (retry) or FAILED
    error_code: str = ""
    error_text: str = ""
    retry_at: int = 0
    deferred: bool = False  # waited for a resource (a free ref, a throttled SMSC)
    attempted: bool = False  # a submit of it reached the SMSC: spends one of max_attempts
    receipt_wait_ms: int = 0  # submitted: becomes unknown if no receipt settles it by then


@dataclass(frozen=True, slots=True)
class Expiry:
    """What one pass of :meth:`Store.expire_queued` did."""

    failed: list[str]  # ids it moved to failed (Expired)
    next_start: int  # rank the channel's next pass starts from (0: from the lowest again)


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """A delivery receipt to correlate by the forms of its id (see receipt_id_forms)."""

    channel: str
    forms: Mapping[str, str]  # id convention ("same", "hex_to_dec", "dec_to_hex") -> id form
    state: Status | None  # None: an intermediate receipt (ENROUTE, ACCEPTD)
    stat: str
    err: str
    at: int = 0
    smsc: str = ""  # the channel's SMSC account; "" for the channel's name
    spelled_twice: bool = False  # TLV and text ids in two bases: the "same" form is proven

    @property
    def candidates(self) -> list[str]:
        """The distinct forms of the id, best first."""
        return list(dict.fromkeys(self.forms.values()))


@dataclass(frozen=True, slots=True)
class MoPart:
    """A mobile-originated deliver_sm, possibly one part of a concatenated message."""

    api_id: str  # the id the whole message gets if this part completes it
    channel: str
    source: str
    destination: str
    body: bytes  # the text's octets, undecoded: a character may straddle two parts
    data_coding: int = 0
    ref: str = ""  # "" for a single-part message; else "{bits}:{ref}"
    total: int = 1
    seq: int = 1
    default_account: str = ""  # owns it if no account owns its destination ('': Admins only)


@dataclass(frozen=True, slots=True)
class Overview:
    """The status page's data, as stored (see :meth:`Store.overview`)."""

    now_ms: int
    workers: list[dict[str, Any]]  # snapshots published by live workers
    minutes: list[tuple[int, dict[str, int]]]  # (minute, {"{channel}|{status}": n}), oldest first
    failures: list[list[Any]]  # [id, channel, status, detail, at_ms], newest first
    jobs: int  # arq jobs waiting
    queued: dict[str, int]  # per channel: waiting for a worker or in its hands
    awaiting_receipt: dict[str, int]  # per channel: submitted, receipt not yet in


@dataclass(slots=True)
class Record:
    """A message record as stored, for status lookups."""

    api_id: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.fields.get("account", "")

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    def transitions(self) -> list[tuple[str, int, str]]:
        """(status, at_ms, detail) for every transition, oldest first."""
        return [(str(s), int(at), str(d)) for s, at, d in json.loads(self.fields.get("tr", "[]"))]


# --- Lua -----------------------------------------------------------------------------------

_ALLOWED_LUA = "local ALLOWED = {" + ",".join(
    f"[{json.dumps(str(src))}]={{" + ",".join(f"[{json.dumps(str(d))}]=true" for d in sorted(dst))
    + "}"
    for src, dst in ALLOWED.items()
) + "}\n"

_FINAL_LUA = (
    "local FINAL = {" + ",".join(f"[{json.dumps(str(f))}]=true" for f in sorted(FINAL)) + "}\n"
)

# Receipt states by how bad they are, from lifecycle.SEVERITY: the worst part names the message.
_RANK_LUA = "local rank = {delivered=0," + ",".join(
    f"{s}={len(SEVERITY) - i}" for i, s in enumerate(SEVERITY)) + "}\n"

# Webhooks: the statuses an account's callback hears of, and the cap of its event stream (a
# backstop only: delivered and dead-lettered events are deleted from it at once).
WEBHOOK_STATES = FINAL | {Status.SUBMITTED, Status.UNKNOWN}
WEBHOOK_STREAM_MAXLEN = 1_000_000
_HOOKED_LUA = (
    "local HOOKED = {" + ",".join(f"[{json.dumps(str(s))}]=true" for s in sorted(WEBHOOK_STATES))
    + f"}}\nlocal WH_MAXLEN = {WEBHOOK_STREAM_MAXLEN}\n"
)

# Status page: per-minute counters per channel and status (kept an hour), latest failures.
STATS_TTL_SECONDS = 3900
FAILURES_KEPT = 100
_STATS_LUA = f"""
local function tally(channel, what, n, at)
  local k = '{PREFIX}stats:' .. math.floor(at / 60000)
  redis.call('HINCRBY', k, channel .. '|' .. what, n)
  redis.call('EXPIRE', k, {STATS_TTL_SECONDS})
end
local function failure(id, channel, status, detail, at)
  redis.call('LPUSH', '{PREFIX}failures', cjson.encode({{id, channel, status, detail, at}}))
  redis.call('LTRIM', '{PREFIX}failures', 0, {FAILURES_KEPT - 1})
end
-- A script that moves many messages counts them here and writes the sums once at its end
-- (flush_run): one HINCRBY per minute, channel and status, one EXPIRE per minute, instead
-- of both per transition. Its transitions' events go out alike: one PUBLISH per run, a line
-- per transition (each redis.call costs the script more than the command itself).
local counts = {{}}
local events = {{}}
local function count(channel, what, at)
  local k = '{PREFIX}stats:' .. math.floor(at / 60000)
  local c = counts[k]
  if not c then c = {{}}; counts[k] = c end
  local fld = channel .. '|' .. what
  c[fld] = (c[fld] or 0) + 1
end
local function flush_run()
  for k, c in pairs(counts) do
    for fld, n in pairs(c) do redis.call('HINCRBY', k, fld, n) end
    redis.call('EXPIRE', k, {STATS_TTL_SECONDS})
  end
  counts = {{}}
  if #events > 0 then
    redis.call('PUBLISH', '{EVENTS}', table.concat(events, '\\n'))
    events = {{}}
  end
end
"""

_COMMON_LUA = _ALLOWED_LUA + _FINAL_LUA + _RANK_LUA + _HOOKED_LUA + _STATS_LUA + r"""
local P = 'smsgw:'
local callbacks = {}  -- account -> {url, chosen statuses or false}: looked up once per run
local function capture(key, account, dst, at)
  -- A webhook event is written by the script that makes the transition, so a crash can
  -- neither lose one nor invent one. Accounts without a callback cost one HMGET per run, and
  -- a status the account did not choose (cb_events: ",delivered,failed,") costs no more.
  if not HOOKED[dst] or not account then return end
  local cb = callbacks[account]
  if cb == nil then
    cb = redis.call('HMGET', P .. 'acct:' .. account, 'cb_url', 'cb_events')
    callbacks[account] = cb
  end
  if not cb[1] then return end
  if cb[2] and not string.find(cb[2], ',' .. dst .. ',', 1, true) then return end
  local f = redis.call('HMGET', key, 'cmid', 'channel', 'to', 'err_code', 'err_text',
                       'dlr_stat', 'dlr_err')
  redis.call('XADD', P .. 'wh:' .. account, 'MAXLEN', '~', WH_MAXLEN, '*', 'kind', 'status',
             'id', string.sub(key, #P + 3), 'status', dst, 'cmid', f[1] or '',
             'channel', f[2] or '', 'to', f[3] or '', 'code', f[4] or '', 'text', f[5] or '',
             'stat', f[6] or '', 'err', f[7] or '', 'at', at)
end
local function fetch(key, ...)
  -- The fields move() needs and the caller's own, in one HMGET, by name (false if absent).
  local names = {'status', 'account', 'channel', 'tr', 'ref', 'to', ...}
  local got = redis.call('HMGET', key, unpack(names))
  local f = {}
  for i, name in ipairs(names) do f[name] = got[i] end
  return f
end
local function appended(tr, entry)
  -- The transitions with one more: the stored JSON text with the entry spliced in before its
  -- closing bracket is what decoding, appending and encoding again gives (cjson writes back
  -- what it read byte for byte), without the trip through Lua tables.
  if tr and #tr > 2 and string.sub(tr, 1, 1) == '[' and string.sub(tr, -1) == ']' then
    return string.sub(tr, 1, -2) .. ',' .. cjson.encode(entry) .. ']'
  end
  local list = cjson.decode(tr or '[]')
  list[#list + 1] = entry
  return cjson.encode(list)
end
local function move(key, f, dst, at, detail, extra)
  -- f: the record's fields from fetch(); kept up to date with what this move writes, so the
  -- caller may move the same record again without reading it back.
  local cur = f.status
  if not cur then return false end
  if not ALLOWED[cur][dst] then return false end
  extra = extra or {}
  local tr = appended(f.tr, {dst, at, detail or ''})
  redis.call('HSET', key, 'status', dst, 'tr', tr, unpack(extra))
  f.status, f.tr = dst, tr
  for i = 1, #extra, 2 do f[extra[i]] = extra[i + 1] end
  local id = string.sub(key, #P + 3)
  events[#events + 1] = id .. ' ' .. dst
  capture(key, f.account, dst, at)
  count(f.channel or '', dst, at)
  if FINAL[dst] and dst ~= 'delivered' then
    failure(id, f.channel or '', dst, detail or '', at)
  end
  if f.ref and dst ~= 'queued' and dst ~= 'sending' then
    -- Every part is answered (or none will be sent): free the concatenation ref for the next
    -- message to the number, as a receipt finds its message by SMSC id. A retry keeps it, as
    -- a part that timed out may be on the handset. Off the record too, so no later move frees
    -- a ref another message has taken since.
    redis.call('HDEL', P .. 'ref:' .. f.channel .. ':' .. f.to, f.ref)
    redis.call('HDEL', key, 'ref')
    f.ref = false
  end
  if FINAL[dst] or dst == 'unknown' then
    -- Settled: drop it from its channel's due index.
    redis.call('ZREM', P .. 'pending:' .. f.channel, id)
  end
  return true
end
local function combine(key, nparts, part, state)
  -- Every part needs a receipt state; ``part`` has just got ``state`` (not yet written).
  local got = {}
  if nparts ~= 1 or part ~= 0 then
    local names = {}
    for i = 0, nparts - 1 do names[i + 1] = 'p' .. i end
    got = redis.call('HMGET', key, unpack(names))
  end
  local worst = 'delivered'
  for i = 0, nparts - 1 do
    local s = got[i + 1]
    if i == part then s = state end
    if not s then return nil end
    if rank[s] > rank[worst] then worst = s end
  end
  return worst
end
local function apply_receipt(key, f, part, state, stat, err, at)
  -- f: from fetch(key, 'nparts'). The receipt's fields are written by the move when it
  -- settles the message, else on their own (also when the record is gone or already final).
  local mine = {'p' .. part, state, 'dlr_stat', stat, 'dlr_err', err}
  local final = combine(key, tonumber(f.nparts or '1'), part, state)
  if final and move(key, f, final, at, 'stat:' .. stat .. ' err:' .. err,
                    {'done_at', at, unpack(mine)}) then
    return
  end
  redis.call('HSET', key, unpack(mine))
  f[mine[1]], f.dlr_stat, f.dlr_err = state, stat, err
end
"""

_MATCH_LUA = r"""
-- Receipt correlation. A receipt h = {forms, twice, state, stat, err, at, ttl} comes with its
-- id's forms by convention ("same"; "hex_to_dec": responses hex, receipts decimal; "dec_to_hex"),
-- looked up in dlr:{smsc}:{form}, shared by every channel of the SMSC account. The first receipt
-- that matches under exactly one of its forms (or spells its id twice: TLV and text) teaches
-- the account's convention, idform:{smsc}, and from then on only its form is used. Until then
-- a receipt whose forms leave its message in doubt is held under every form and queued in
-- heldq:{smsc}, and learning settles the queue: a receipt is never applied on a guess.
local conventions = {}  -- smsc -> its convention or false: read once per script run
local function convention(smsc)
  local c = conventions[smsc]
  if c == nil then
    c = redis.call('GET', P .. 'idform:' .. smsc) or false
    conventions[smsc] = c
  end
  return c
end
local function target_of(smsc, form)
  return redis.call('GET', P .. 'dlr:' .. smsc .. ':' .. form)
end
local function pick(smsc, h)
  -- The form to look h up by and the convention its match proves (nil: none); nil while in
  -- doubt; false when h has no form under the account's convention.
  local by_form, n, only = {}, 0, nil
  for conv, form in pairs(h.forms) do
    if by_form[form] == nil then by_form[form], n, only = conv, n + 1, form end
  end
  if n == 1 then return only end  -- one reading ("5", "msg-7", an explicit format)
  local known = convention(smsc)
  if known then return h.forms[known] or false end
  if h.twice and target_of(smsc, h.forms.same) then return h.forms.same, 'same' end
  local found, hits = nil, 0
  for form in pairs(by_form) do
    if target_of(smsc, form) then found, hits = form, hits + 1 end
  end
  if hits == 1 then return found, by_form[found] end
  return nil
end
local function settle(target, h)
  local sep = string.find(target, '|', 1, true)
  local id, part = string.sub(target, 1, sep - 1), tonumber(string.sub(target, sep + 1))
  if h.state ~= '' then
    local key = P .. 'm:' .. id
    apply_receipt(key, fetch(key, 'nparts'), part, h.state, h.stat, h.err, h.at)
  end
  return id
end
local function unhold(smsc, h, raw)
  -- Drop h's held keys; one another receipt of the same form has taken over since stays.
  for _, form in pairs(h.forms) do
    local k = P .. 'held:' .. smsc .. ':' .. form
    if redis.call('GET', k) == raw then redis.call('DEL', k) end
  end
end
local correlate
local function learn(smsc, conv)
  redis.call('SET', P .. 'idform:' .. smsc, conv)
  conventions[smsc] = conv
  local qk = P .. 'heldq:' .. smsc
  local queued = redis.call('LRANGE', qk, 0, -1)
  redis.call('DEL', qk)
  for _, raw in ipairs(queued) do
    local h = cjson.decode(raw)
    unhold(smsc, h, raw)
    correlate(smsc, h)
  end
end
correlate = function(smsc, h)
  -- The id of the message h settled, 'held' or 'ignored' (intermediate and unmatched).
  local form, proves = pick(smsc, h)
  if form == false then return 'ignored' end
  if form == nil then
    if h.state == '' then return 'ignored' end
    local raw = cjson.encode(h)
    for _, f in pairs(h.forms) do
      redis.call('SET', P .. 'held:' .. smsc .. ':' .. f, raw, 'EX', h.ttl)
    end
    local qk = P .. 'heldq:' .. smsc
    redis.call('RPUSH', qk, raw)
    redis.call('LTRIM', qk, -HELD_QUEUE_MAX, -1)  -- bounded if the convention is never learned
    redis.call('EXPIRE', qk, h.ttl)
    return 'held'
  end
  local target = target_of(smsc, form)
  if not target then
    if h.state == '' then return 'ignored' end
    redis.call('SET', P .. 'held:' .. smsc .. ':' .. form, cjson.encode(h), 'EX', h.ttl)
    return 'held'
  end
  local id = settle(target, h)
  if proves then learn(smsc, proves) end
  return id
end
local function resume(smsc, raw)
  -- A held receipt, one of whose forms was just recorded: settled unless still in doubt.
  local h = cjson.decode(raw)
  if pick(smsc, h) == nil then return end
  unhold(smsc, h, raw)
  redis.call('LREM', P .. 'heldq:' .. smsc, 1, raw)
  correlate(smsc, h)
end
""".replace("HELD_QUEUE_MAX", str(HELD_QUEUE_MAX))

_ACCEPT = _COMMON_LUA + r"""
-- Several requests in one script run, each all-or-nothing on its own: a request over its key's
-- limits stores nothing, an error in one (caught by pcall) is that request's answer alone.
-- KEYS: the wake-up job's key, the arq queue.
-- ARGV: now, retention_s, grace_ms, job_id, job_payload, job_expiry_ms, requests_json;
-- each request: {w = window_ms, m = {messages}, lim = {bucket, quota_prefix, rate, burst,
-- quota}} (lim absent: no limits). Answers, in order: {k = kinds, r = ids} (see accept()),
-- {limited = reason, retry_ms = ms}, or {err = text}.
local now, retention, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = nil  -- the server's clock for the limits: one for every gateway instance
local function server_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
local function limited(lim, n)
  -- Checks every limit first, then takes from each: a refusal changes nothing.
  local bucket, qprefix = lim[1], lim[2]
  local rate, burst, quota = tonumber(lim[3]), tonumber(lim[4]), tonumber(lim[5])
  local at = server_ms()
  local left = nil
  if rate > 0 then
    if n > burst then return {limited = 'burst', retry_ms = 0} end
    local b = redis.call('HMGET', bucket, 'tokens', 'ts')
    local have, ts = tonumber(b[1] or burst), tonumber(b[2] or at)
    have = math.min(burst, have + math.max(0, at - ts) * rate / 1000)
    if have < n then
      return {limited = 'rate', retry_ms = math.ceil((n - have) * 1000 / rate)}
    end
    left = have - n
  end
  local qk = nil
  if quota > 0 then
    local day = math.floor(at / 86400000)
    qk = qprefix .. day
    if tonumber(redis.call('GET', qk) or '0') + n > quota then
      return {limited = 'quota', retry_ms = (day + 1) * 86400000 - at}
    end
  end
  if left then
    redis.call('HSET', bucket, 'tokens', tostring(left), 'ts', string.format('%d', at))
    redis.call('PEXPIRE', bucket, math.ceil(burst * 1000 / rate) + 1000)
  end
  if qk then
    redis.call('INCRBY', qk, n)
    redis.call('EXPIRE', qk, 2 * 86400)
  end
  return nil
end
local per_channel, fresh, due = {}, 0, {}
local function remembered(m, window)
  -- The idempotency record of (account, cmid): an earlier answer, or nil after noting this one.
  local ck = P .. 'c:' .. m.account .. ':' .. m.cmid
  local at = tonumber(redis.call('HGET', ck, '_at') or '0')
  if now - at <= window then
    local fp = redis.call('HGET', ck, '_fp')
    local prev = redis.call('HGET', ck, m.to)
    if fp and fp ~= m.fp then return 'c', nil end
    if prev then return 'd', prev end
  else
    redis.call('DEL', ck)
  end
  redis.call('HSET', ck, m.to, m.id, '_fp', m.fp)
  if not redis.call('HGET', ck, '_at') then redis.call('HSET', ck, '_at', now) end
  redis.call('EXPIRE', ck, retention)
  return nil
end
local function peek(m, window, seen)
  -- What remembered() will answer for m ('c', 'd', or nil: new) without writing anything;
  -- ``seen`` holds, per idempotency record, what the request's earlier messages will note.
  local ck = P .. 'c:' .. m.account .. ':' .. m.cmid
  local s = seen[ck]
  if not s then
    local got = redis.call('HMGET', ck, '_at', '_fp')
    s = {tos = {}}
    if now - tonumber(got[1] or '0') <= window then s.live, s.fp = true, got[2] end
    seen[ck] = s
  end
  if s.fp and s.fp ~= m.fp then return 'c' end
  if s.tos[m.to] or (s.live and redis.call('HEXISTS', ck, m.to) == 1) then return 'd' end
  s.tos[m.to], s.fp = true, m.fp
  return nil
end
local function cost(req)
  -- Recipients the limits count: those the idempotency index will not answer (a retry of an
  -- accepted message, or a conflicting reuse of its clientMessageId, sends nothing).
  local n, seen = #req.m, {}
  for _, m in ipairs(req.m) do
    if m.cmid ~= '' and peek(m, req.w, seen) then n = n - 1 end
  end
  return n
end
local queued_tr = '[["queued",' .. string.format('%d', now) .. ',""]]'  -- every record's first
local function store(m)
  local key = P .. 'm:' .. m.id
  redis.call('HSET', key, 'id', m.id, 'account', m.account, 'cmid', m.cmid,
    'channel', m.channel, 'to', m.to, 'content', m.content, 'enc', m.enc, 'seg', m.seg,
    'status', 'queued', 'attempts', 0, 'accepted_at', now, 'tr', queued_tr)
  redis.call('EXPIRE', key, retention)
  -- Due-index entries are added together at the end, one ZADD per channel and chunk.
  local d = due[m.channel]
  if not d then d = {}; due[m.channel] = d end
  d[#d + 1] = now + grace
  d[#d + 1] = m.id
  fresh = fresh + 1
  per_channel[m.channel] = (per_channel[m.channel] or 0) + 1
  return 'n'
end
local function accept(req)
  -- The answer: one letter per message (n new, d duplicate, c conflict) and, in order, the
  -- earlier id of each duplicate; a new message's id is the one the caller sent.
  if req.lim then
    local n = cost(req)
    local refusal = n > 0 and limited(req.lim, n)
    if refusal then return refusal end
  end
  local kinds, refs = {}, {}
  for i, m in ipairs(req.m) do
    local kind, ref = nil, nil
    if m.cmid ~= '' then kind, ref = remembered(m, req.w) end
    kinds[i] = kind or store(m)
    if ref then refs[#refs + 1] = ref end
  end
  return {k = table.concat(kinds), r = refs}
end
local answers = {}
for i, req in ipairs(cjson.decode(ARGV[7])) do
  local ok, res = pcall(accept, req)
  answers[i] = ok and res or {err = tostring(res)}
end
for channel, d in pairs(due) do
  for i = 1, #d, 1000 do  -- unpack() has a limit on the number of values
    redis.call('ZADD', P .. 'pending:' .. channel, unpack(d, i, math.min(i + 999, #d)))
  end
end
if fresh > 0 then
  redis.call('PSETEX', KEYS[1], tonumber(ARGV[6]), ARGV[5])
  redis.call('ZADD', KEYS[2], now, ARGV[4])
end
for channel, n in pairs(per_channel) do tally(channel, 'accepted', n, now) end
return cjson.encode(answers)
"""

_CLAIM = _COMMON_LUA + r"""
-- ARGV: now, lease_until, worker, served_channels_json, ids...
-- A message is claimed when it is queued and due, or sending under a holder that is dead.
-- Messages of channels this worker does not serve are made due now for a worker that does.
local now, lease, worker = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local served = {}
for _, ch in ipairs(cjson.decode(ARGV[4])) do served[ch] = true end
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = P .. 'm:' .. id
  local f = fetch(key, 'worker', 'content', 'attempts', 'accepted_at', 'next_at')
  local st, ch = f.status, f.channel
  if not st then
    -- Its record expired (retention) while still indexed: nothing is left to send.
    for name in pairs(served) do redis.call('ZREM', P .. 'pending:' .. name, id) end
  elseif st == 'submitted' then
    -- Due in the index only once its receipt wait has passed (a re-run job is not due).
    local due = redis.call('ZSCORE', P .. 'pending:' .. ch, id)
    if due and tonumber(due) <= now then
      move(key, f, 'unknown', now, 'no delivery receipt in time', {'done_at', now})
    end
  elseif st == 'queued' or st == 'sending' then
    local pk = P .. 'pending:' .. ch
    local held = false  -- a claim still standing: by a live worker, or by us within the lease
    if st == 'sending' and f.worker == worker then
      -- Ours: a claim whose reply was lost to a dropped connection is ours to take back once
      -- its lease has passed (the caller passes only ids it has not got in flight; within the
      -- lease a concurrent claim of the same batch must not take it twice).
      held = tonumber(redis.call('ZSCORE', pk, id) or '0') > now
    elseif st == 'sending' then
      held = redis.call('EXISTS', P .. 'w:' .. (f.worker or '')) == 1
      if held then redis.call('ZADD', pk, lease, id) end
    end
    if held then
      -- left as it is
    elseif not served[ch] then
      redis.call('ZADD', pk, now, id)
    elseif st == 'sending' or tonumber(f.next_at or '0') <= now then
      -- A claim spends no attempt: the outcome does, when its submit reached the SMSC. Only a
      -- dead holder's claim is counted here, as its submit may have gone out unrecorded.
      local attempts = tonumber(f.attempts or '0')
      if st == 'sending' and f.worker ~= worker then attempts = attempts + 1 end
      move(key, f, 'sending', now, st == 'sending' and 'reclaimed' or
           ('attempt ' .. (attempts + 1)), {'worker', worker, 'attempts', attempts})
      redis.call('ZADD', pk, lease, id)
      out[#out + 1] = {id, ch, f.to, f.content, attempts, f.accepted_at,
                       st == 'sending' and 1 or 0}
    end
  end
end
flush_run()
return cjson.encode(out)
"""

_OUTCOMES = _COMMON_LUA + _MATCH_LUA + r"""
-- ARGV: now, dlr_ttl_s, outcomes_json; each: {id, channel, smsc, ids, status, code, text,
-- retry_at, attempted, receipt_wait}. An attempted outcome (its submit reached the SMSC)
-- spends one.
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local applied = 0
for _, o in ipairs(cjson.decode(ARGV[3])) do
  local key = P .. 'm:' .. o.id
  local f = fetch(key)
  if o.attempted and f.status == 'sending' then redis.call('HINCRBY', key, 'attempts', 1) end
  if o.status == 'submitted' then
    local extra = {'submitted_at', now, 'smsc_ids', table.concat(o.ids, ','), 'nparts', #o.ids}
    if o.code ~= '' then  -- accepted, with a caveat (a part without an SMSC id)
      extra[#extra + 1], extra[#extra + 2] = 'err_code', o.code
      extra[#extra + 1], extra[#extra + 2] = 'err_text', o.text
    end
    if move(key, f, 'submitted', now, table.concat(o.ids, ','), extra) then
      applied = applied + 1
      if o.receipt_wait > 0 then  -- due again if no receipt settles it in time: unknown
        redis.call('ZADD', P .. 'pending:' .. o.channel, now + o.receipt_wait, o.id)
      else
        redis.call('ZREM', P .. 'pending:' .. o.channel, o.id)
      end
      for part, sid in ipairs(o.ids) do
        -- an empty id (the SMSC gave none we could read) must not catch other receipts
        if sid ~= '' then
          redis.call('SET', P .. 'dlr:' .. o.smsc .. ':' .. sid, o.id .. '|' .. (part - 1),
                     'EX', ttl)
        end
      end
      -- Receipts that beat the response, once every part is mapped (one may prove the
      -- convention and settle others); they re-read the record, so f is not used after this.
      for _, sid in ipairs(o.ids) do
        local held = sid ~= '' and redis.call('GET', P .. 'held:' .. o.smsc .. ':' .. sid)
        if held then resume(o.smsc, held) end
      end
    end
  elseif o.status == 'queued' then
    if move(key, f, 'queued', now, o.code .. ' ' .. o.text,
            {'next_at', o.retry_at, 'err_code', o.code, 'err_text', o.text}) then
      applied = applied + 1
      redis.call('ZADD', P .. 'pending:' .. o.channel, o.retry_at, o.id)
    end
  else
    if move(key, f, o.status, now, o.code .. ' ' .. o.text,
            {'done_at', now, 'err_code', o.code, 'err_text', o.text}) then
      applied = applied + 1
      redis.call('ZREM', P .. 'pending:' .. o.channel, o.id)
    end
  end
end
flush_run()
return applied
"""

_RECEIPTS = _COMMON_LUA + _MATCH_LUA + r"""
-- ARGV: held_ttl_s, receipts_json; each: {smsc, forms, twice, state, stat, err, at}
-- Returns per receipt: the message id, 'held', or 'ignored' (intermediate and unmatched).
local held_ttl = tonumber(ARGV[1])
local out = {}
for i, r in ipairs(cjson.decode(ARGV[2])) do
  out[i] = correlate(r.smsc, {forms = r.forms, twice = r.twice, state = r.state, stat = r.stat,
                              err = r.err, at = r.at, ttl = held_ttl})
end
flush_run()
return cjson.encode(out)
"""



_EXPIRE_QUEUED = _COMMON_LUA + r"""
-- ARGV: now, channel, max_age_ms, start, limit, text.
-- One pass of the expiry sweep over a channel that has no bind up (none of its messages can
-- be claimed, so no claim would ever find them too old): from rank ``start`` of its due index
-- (lowest due time first), at most ``limit`` entries that are due, it fails as Expired those
-- still queued and accepted more than max_age_ms ago. Only 'queued' moves: a claimed message
-- is its holder's (or, once its holder is dead, the next claim's) to settle.
-- Returns {failed ids, next start}: 0 once it reached an entry not yet due or the end of the
-- index, else the rank after the entries it read and left (a later pass goes on from there,
-- so entries it cannot move never hide the ones behind them).
local now, ch, max_age = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local start, limit, text = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local pk = P .. 'pending:' .. ch
local got = redis.call('ZRANGE', pk, start, start + limit - 1, 'WITHSCORES')
local failed, left, ended = {}, 0, #got < 2 * limit
for i = 1, #got, 2 do
  local id = got[i]
  if tonumber(got[i + 1]) > now then
    ended = true
    break
  end
  local key = P .. 'm:' .. id
  local f = fetch(key, 'accepted_at')
  if not f.status then
    redis.call('ZREM', pk, id)  -- its record expired (retention) while still indexed
  elseif f.status == 'queued' and now - tonumber(f.accepted_at or now) > max_age
      and move(key, f, 'failed', now, 'Expired ' .. text,
               {'done_at', now, 'err_code', 'Expired', 'err_text', text}) then
    failed[#failed + 1] = id
  else
    left = left + 1
  end
end
flush_run()
return {failed, ended and 0 or start + left}
"""

_TAKE_TOKENS = r"""
-- KEYS: bucket. ARGV: now_ms, rate_per_s, burst, want. Returns {granted, ms_until_next}.
local now, rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                               tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1] or burst), tonumber(b[2] or now)
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', math.max(now, ts))
redis.call('PEXPIRE', KEYS[1], 60000)
local wait = 0
if granted < want then wait = math.ceil((1 - (tokens - math.floor(tokens))) * 1000 / rate) end
return {granted, wait}
"""


_ALLOC_REF = r"""
-- KEYS: refs hash, message key. ARGV: now, modulo, hold_ms, start.
-- A free reference (never used, or held past its time) or -1 when all are in use.
local now, modulo, hold, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                                 tonumber(ARGV[4])
local old = redis.call('HGET', KEYS[2], 'ref')
if old then return tonumber(old) end  -- a re-send keeps its reference
for i = 0, math.min(modulo, 512) - 1 do
  local r = (start + i) % modulo
  local until_ms = tonumber(redis.call('HGET', KEYS[1], r) or '0')
  if until_ms < now then
    redis.call('HSET', KEYS[1], r, now + hold)
    redis.call('PEXPIRE', KEYS[1], hold)
    redis.call('HSET', KEYS[2], 'ref', r)
    return r
  end
end
return -1
"""


_RENEW_LEASE = r"""
-- KEYS: lease. ARGV: owner, ttl_ms. Extends the lease only if the owner still holds it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
"""

_ACQUIRE_LEASE = r"""
-- KEYS: the slots. ARGV: owner, ttl_ms. Takes the first free slot: its index, or -1.
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') then return i - 1 end
end
return -1
"""

_RELEASE_LEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_MO = _COMMON_LUA + r"""
-- ARGV: now, retention_s, part_json, joined. part: {id, channel, source, destination, text,
-- ref, total, seq, dc, hex}. Returns the MO id once recorded, '' while parts are missing.
-- A part of a concatenated message is kept as received (a character may straddle two parts);
-- with every part in, the answer is '?{dc}:{hex of their octets joined}' for the caller to
-- decode, and the same call again with that hex as ``joined`` and the text records it (unless
-- the parts have changed meanwhile: the new join is the answer then).
local now, retention, joined = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local m = cjson.decode(ARGV[3])
-- Run again after an unconfirmed write (see NotReplicated): recorded once, listed once.
if redis.call('EXISTS', P .. 'mo:' .. m.id) == 1 then return m.id end
if m.total > 1 then
  local pk = P .. 'mo:parts:' .. m.channel .. ':' .. m.source .. ':' .. m.ref
  -- Gone between the calls: another delivery of a part completed the message.
  if joined ~= '' and redis.call('EXISTS', pk) == 0 then return '' end
  redis.call('HSET', pk, m.seq, m.dc .. ':' .. m.hex)
  redis.call('EXPIRE', pk, 86400)
  if redis.call('HLEN', pk) < m.total then return '' end
  local dc, octets = m.dc, {}
  for i = 1, m.total do
    local c, hex = string.match(redis.call('HGET', pk, i) or '', '^(%d+):(%x*)$')
    if i == 1 and c then dc = c end
    octets[i] = hex or ''
  end
  local now_joined = table.concat(octets)
  if now_joined ~= joined then return '?' .. dc .. ':' .. now_joined end
  redis.call('DEL', pk)
end
local text = m.text
-- One owner: the account the destination is assigned to on the channel, else the channel's
-- default account, else none (kept for Admins only). Never every tenant of the channel.
local number = string.gsub(m.destination, '^%+', '')
local owner = redis.call('HGET', P .. 'numbers:' .. m.channel, number)
if not owner then owner = m.default_account or '' end
local key = P .. 'mo:' .. m.id
redis.call('HSET', key, 'id', m.id, 'channel', m.channel, 'from', m.source,
           'to', m.destination, 'text', text, 'parts', m.total, 'received_at', now,
           'account', owner)
redis.call('EXPIRE', key, retention)
redis.call('LPUSH', P .. 'mo:list:' .. m.channel, m.id)
redis.call('LTRIM', P .. 'mo:list:' .. m.channel, 0, 9999)
if owner ~= '' then
  -- listed for its owner, and queued for the owner's inbound URL (if it set one for the
  -- channel) in the same script that records it
  redis.call('LPUSH', P .. 'mo:in:' .. owner, m.id)
  redis.call('LTRIM', P .. 'mo:in:' .. owner, 0, 9999)
  if redis.call('HEXISTS', P .. 'inbound:' .. m.channel, owner) == 1 then
    redis.call('XADD', P .. 'wh:' .. owner, 'MAXLEN', '~', WH_MAXLEN, '*', 'kind', 'mo',
               'id', m.id, 'channel', m.channel, 'from', m.source, 'to', m.destination,
               'text', text, 'parts', m.total, 'at', now)
  end
end
redis.call('PUBLISH', P .. 'events', m.id .. ' mo')
return m.id
"""


class NotReplicated(redis.exceptions.TimeoutError):
    """Fewer replicas than required acknowledged a write in time (Redis WAIT).

    The write is on the primary, and a failover may yet lose it. A Redis TimeoutError, so every
    retry path treats it as a passing outage; each write script is safe to run again.
    """

    def __init__(self, acks: int, wanted: int) -> None:
        super().__init__(f"{acks} of {wanted} replicas acknowledged the write in time")
        self.acks = acks
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class ReplicaAcks:
    """How many replicas must hold a message write before it counts; 0: the primary's word."""

    replicas: int = 0
    timeout_ms: int = 1000


class Store:
    """Typed operations on the key schema above. Owns no connection: the caller passes one.

    With ``acks.replicas`` set, the writes that carry a message's fate (accept, outcomes,
    receipts, MO) are followed by ``WAIT`` and raise :class:`NotReplicated` when it falls short.
    """

    def __init__(
        self, redis: Redis, retention_seconds: int, acks: ReplicaAcks = ReplicaAcks()
    ) -> None:
        self._redis = redis
        self._retention = retention_seconds
        self._acks = acks
        self._accept = redis.register_script(_ACCEPT)
        self._claim = redis.register_script(_CLAIM)
        self._outcomes = redis.register_script(_OUTCOMES)
        self._receipts = redis.register_script(_RECEIPTS)
        self._expire_queued = redis.register_script(_EXPIRE_QUEUED)
        self._take_tokens = redis.register_script(_TAKE_TOKENS)
        self._alloc_ref = redis.register_script(_ALLOC_REF)
        self._acquire_lease = redis.register_script(_ACQUIRE_LEASE)
        self._mo = redis.register_script(_MO)
        self._renew_lease = redis.register_script(_RENEW_LEASE)
        self._release_lease = redis.register_script(_RELEASE_LEASE)

    async def _durably(
        self, script: AsyncScript, *, keys: Sequence[Any] = (), args: Sequence[Any] = ()
    ) -> Any:
        """Run a write script; with replica acks required, ``WAIT`` for them on the same
        connection (WAIT covers that connection's writes) in the same round trip."""
        if not self._acks.replicas:
            return await script(keys=keys, args=args)
        for _ in range(2):
            pipe = self._redis.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.wait(self._acks.replicas, self._acks.timeout_ms)
            result, acks = await pipe.execute(raise_on_error=False)
            if not isinstance(result, redis.exceptions.NoScriptError):
                break
            await self._redis.script_load(script.script)  # a new primary after a failover
        for reply in (result, acks):
            if isinstance(reply, Exception):
                raise reply
        if int(acks) < self._acks.replicas:
            raise NotReplicated(int(acks), self._acks.replicas)
        return result

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
                    accepted_at=int(at), reclaimed=bool(r))
            for i, ch, to, c, a, at, r in json.loads(raw)
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
        form (see _MATCH_LUA). Until then one in doubt is held, never guessed.
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
        self, channel: str, *, max_age_ms: int, text: str, start: int, limit: int
    ) -> Expiry:
        """One bounded pass of the expiry sweep over a channel with no bind up: of at most
        ``limit`` due entries of its index from rank ``start``, fail (``Expired``, ``text``)
        the queued messages older than ``max_age_ms``. Atomic, so passes of several workers
        and a claim at the same moment never act twice on a message."""
        failed, next_start = await self._durably(
            self._expire_queued, args=[now_ms(), channel, max_age_ms, start, limit, text])
        return Expiry(failed=[_text(i) for i in failed], next_start=int(next_start))

    async def due(self, channels: Sequence[str], limit: int) -> list[str]:
        """Ids of ``channels`` whose due time has passed (retries, crash recovery)."""
        now = now_ms()
        pipe = self._redis.pipeline(transaction=False)
        for channel in channels:
            pipe.zrangebyscore(pending_key(channel), "-inf", now, start=0, num=limit)
        rows: list[list[bytes]] = await pipe.execute()
        return [r.decode() for row in rows for r in row]

    async def take_tokens(
        self, channel: str, rate: float, burst: int, want: int
    ) -> tuple[int, int]:
        """Up to ``want`` tokens of a channel's shared rate: (granted, ms until the next)."""
        granted, wait = await self._take_tokens(keys=[tps_key(channel)],
                                                args=[now_ms(), rate, burst, want])
        return int(granted), int(wait)

    async def allocate_ref(
        self, api_id: str, channel: str, to: str, *, modulo: int, hold_ms: int, start: int
    ) -> int | None:
        """A concatenation reference no message to ``to`` holds, or None. A message holds
        it until every part is answered, a retry included (``hold_ms`` if nothing frees it)."""
        ref = await self._alloc_ref(keys=[ref_key(channel, to), msg_key(api_id)],
                                    args=[now_ms(), modulo, hold_ms, start])
        return None if int(ref) < 0 else int(ref)

    async def acquire_bind_slot(
        self, channel: str, kind: str, slots: int, owner: str, ttl_ms: int
    ) -> int | None:
        """Take a free one of ``slots`` bind slots for ``owner``, or None when all are held."""
        keys = [bind_key(channel, kind, slot) for slot in range(slots)]
        got = await self._acquire_lease(keys=keys, args=[owner, ttl_ms])
        return None if int(got) < 0 else int(got)

    async def renew_bind_slot(
        self, channel: str, kind: str, slot: int, owner: str, ttl_ms: int
    ) -> bool:
        """Extend a held bind slot; False if it was lost (expired and taken)."""
        return bool(await self._renew_lease(keys=[bind_key(channel, kind, slot)],
                                            args=[owner, ttl_ms]))

    async def release_bind_slot(self, channel: str, kind: str, slot: int, owner: str) -> None:
        """Give a bind slot back at once (clean stop)."""
        await self._release_lease(keys=[bind_key(channel, kind, slot)], args=[owner])

    async def record_mo(self, part: MoPart) -> str:
        """Record an MO message (or one part of it); its id once complete, else ''.

        The parts of a concatenated message are joined as octets, then decoded."""
        single = part.total <= 1
        payload = {"id": part.api_id, "channel": part.channel, "source": part.source,
                   "destination": part.destination, "ref": part.ref, "total": part.total,
                   "seq": part.seq, "dc": part.data_coding,
                   "hex": "" if single else part.body.hex(),
                   "text": decode_text(part.body, part.data_coding) if single else "",
                   "default_account": part.default_account}
        joined = ""
        while True:  # a second round trip for the part that completes a message, rarely more
            answer = _text(await self._durably(self._mo, args=[
                now_ms(), self._retention, json.dumps(payload, ensure_ascii=False), joined]))
            if not answer.startswith("?"):
                return answer
            coding, _, joined = answer[1:].partition(":")
            payload["text"] = decode_text(bytes.fromhex(joined), int(coding))

    async def mo_messages(self, channel: str, limit: int) -> list[dict[str, str]]:
        """The newest MO messages of a channel."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(f"{PREFIX}mo:list:{channel}", 0, limit - 1)
        (ids,) = await pipe.execute()
        for mo_id in ids:
            pipe.hgetall(f"{PREFIX}mo:{mo_id.decode()}")
        return [_decode(row) for row in await pipe.execute() if row]

    async def heartbeat(self, worker: str, ttl_ms: int) -> None:
        """Declare ``worker`` alive for ``ttl_ms``; its claims are safe while this lasts."""
        await self._redis.set(worker_key(worker), "1", px=ttl_ms)

    async def forget_worker(self, worker: str) -> None:
        """A clean stop: the worker's claims may be taken over at once."""
        await self._redis.delete(worker_key(worker))

    async def publish_snapshot(self, worker: str, snapshot: Mapping[str, Any], ttl_ms: int) -> None:
        """Publish a worker's view of its binds (status page); it expires with the worker."""
        now = now_ms()
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(snapshot_key(worker), json.dumps(snapshot), px=ttl_ms)
        pipe.zadd(SNAPSHOTS, {worker: now + ttl_ms})
        pipe.zremrangebyscore(SNAPSHOTS, "-inf", now)
        await pipe.execute()

    async def overview(self, channels: Sequence[str], minutes: int, failures: int) -> Overview:
        """What the status page shows: live workers' snapshots, per-minute counters of the last
        ``minutes`` minutes, the latest failures and queue depths. Two round trips."""
        now = now_ms()
        first = now // 60_000 - minutes + 1
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrangebyscore(SNAPSHOTS, now, "+inf")
        for minute in range(first, first + minutes):
            pipe.hgetall(stats_key(minute))
        pipe.lrange(FAILURES, 0, failures - 1)
        pipe.zcard(ARQ_QUEUE)
        workers, *rows = await pipe.execute()
        counters, (latest, jobs) = rows[:minutes], rows[minutes:]
        for worker in workers:
            pipe.get(snapshot_key(_text(worker)))
        for channel in channels:
            pipe.zcount(pending_key(channel), "-inf", now + QUEUE_HORIZON_MS)
            pipe.zcard(pending_key(channel))
        snaps = await pipe.execute()
        depths = snaps[len(workers):]
        return Overview(
            now_ms=now,
            workers=[json.loads(s) for s in snaps[:len(workers)] if s],
            minutes=[(first + i, {_text(k): int(v) for k, v in row.items()})
                     for i, row in enumerate(counters)],
            failures=[json.loads(f) for f in latest], jobs=int(jobs),
            queued={ch: int(depths[2 * i]) for i, ch in enumerate(channels)},
            awaiting_receipt={ch: int(depths[2 * i + 1]) - int(depths[2 * i])
                              for i, ch in enumerate(channels)},
        )

    async def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records by apiMessageId, in order; None where unknown or expired."""
        pipe = self._redis.pipeline(transaction=False)
        for api_id in ids:
            pipe.hgetall(msg_key(api_id))
        rows: list[Mapping[Any, Any]] = await pipe.execute()
        return [Record(api_id=i, fields=_decode(row)) if row else None
                for i, row in zip(ids, rows, strict=True)]

    async def put_api_key(self, secret_hash: str, fields: Mapping[str, str]) -> None:
        """Create or replace an API key record."""
        await self._redis.hset(api_key_key(secret_hash), mapping=dict(fields))  # type: ignore[misc]

    async def get_api_key(self, secret_hash: str) -> dict[str, str] | None:
        """An API key record by the hash of its secret, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(api_key_key(secret_hash))
        (row,) = await pipe.execute()
        return _decode(row) if row else None

    async def find_by_cmid(self, account: str, cmid: str) -> list[Record]:
        """Every recipient's record for a clientMessageId of an account."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(cmid_key(account, cmid))
        (row,) = await pipe.execute()
        index = _decode(row)
        ids = [v for k, v in index.items() if not k.startswith("_")]
        return [r for r in await self.get(ids) if r is not None]

    # --- API keys and limits ------------------------------------------------------------------

    @functools.cached_property
    def _key_scripts(self) -> _KeyScripts:
        return _KeyScripts(self._redis)

    async def authenticate_key(self, secret_hash: str, *, touch_every_ms: int) -> KeyRow | None:
        """A key record, its account's children (Partner keys) and Redis' clock, in one round
        trip. Records last-used at most once per ``touch_every_ms``, inside the same script."""
        raw = await self._key_scripts.auth(keys=[api_key_key(secret_hash)], args=[touch_every_ms])
        if not raw:
            return None
        flat, children, now = raw
        return KeyRow(fields=_pairs(flat), children=frozenset(_text(c) for c in children),
                      now_ms=int(now))

    async def create_api_key(
        self, secret_hash: str, fields: Mapping[str, str], *, parent: str = "", owner: str = ""
    ) -> str:
        """Store a new key record and its account; 'ok', 'exists' or 'forbidden'.

        ``parent`` (if set) becomes the account's parent. With ``owner`` set, the account must
        be new or already a child of ``owner``, and becomes one (a Partner creating a key).
        """
        return _text(await self._key_scripts.create(
            args=[secret_hash, json.dumps(dict(fields)), parent, owner, now_ms()]))

    async def api_keys(self, key_id: str = "") -> list[dict[str, str]]:
        """Every key record (or the one with ``key_id``) with its account's ``parent``."""
        rows = await self._key_scripts.listing(args=[key_id])
        return [_pairs(row) for row in rows]

    async def change_api_key(self, key_id: str, op: KeyOp, new_hash: str = "") -> bool:
        """Enable, disable, delete, or rotate (to ``new_hash``) a key; False if unknown."""
        return bool(await self._key_scripts.change(args=[op, key_id, new_hash, now_ms()]))

    async def account(self, account: str) -> AccountRow | None:
        """An account's parent and ownership, or None if it is unknown."""
        parent, ownership, created = await self._redis.hmget(  # type: ignore[misc]
            account_key(account), ["parent", "ownership", "created_at"])
        if created is None:  # every account record has one
            return None
        return AccountRow(account=account, parent=_text(parent or b""),
                          ownership=_text(ownership or b""), created_at_ms=int(created))

    async def set_parent(self, account: str, parent: str) -> str:
        """Set ('' clears) an account's parent, as an Admin; 'ok', 'unknown' (account) or
        'unknown-parent'."""
        return _text(await self._key_scripts.set_parent(args=[account, parent]))

    # --- numbers: which account owns the MO messages to a destination ----------------------

    async def assign_number(self, channel: str, number: str, account: str) -> bool:
        """Give ``account`` the channel's MO messages to ``number`` (without a leading '+');
        False if the account is unknown (no key was ever created for it)."""
        return bool(await self._key_scripts.assign(
            keys=[numbers_key(channel), account_key(account)], args=[number, account]))

    async def unassign_number(self, channel: str, number: str) -> bool:
        """Take a number from its account; False if it was not assigned."""
        return bool(await self._redis.hdel(numbers_key(channel), number))  # type: ignore[misc]

    async def numbers(self, channel: str) -> dict[str, str]:
        """A channel's assigned numbers: number -> account."""
        return _decode(await self._redis.hgetall(numbers_key(channel)))  # type: ignore[misc]

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

    async def queue_depths(self, channels: Sequence[str]) -> tuple[int, dict[str, int]]:
        """Jobs in the arq queue, and unfinished messages per channel (pending index):
        read-only, one round trip, for metrics at scrape time."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(ARQ_QUEUE)
        for channel in channels:
            pipe.zcard(pending_key(channel))
        jobs, *pending = await pipe.execute()
        return int(jobs), {ch: int(n) for ch, n in zip(channels, pending, strict=True)}


def _accept_request(call: AcceptCall) -> dict[str, Any]:
    """One request as the accept script reads it."""
    request: dict[str, Any] = {"w": call.window_seconds * 1000, "m": [
        {"id": m.api_id, "account": m.account, "cmid": m.cmid, "fp": m.fingerprint,
         "channel": m.channel, "to": m.to, "content": m.content, "enc": m.encoding,
         "seg": m.segments}
        for m in call.messages]}
    if call.limits is not None:
        lim = call.limits
        request["lim"] = [bucket_key(lim.key_id), quota_key_prefix(lim.key_id), lim.rate,
                          lim.burst, lim.daily_quota]
    return request


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


async def watch_transitions(redis: Redis) -> AsyncIterator[tuple[str, str]]:
    """(apiMessageId, status) for every transition from now on (live views, tests)."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(EVENTS)
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                api_id, _, status = msg["data"].decode().partition(" ")
                yield api_id, status


def _decode(row: Mapping[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in row.items()
    }


# --- API keys and limits ---------------------------------------------------------------------


def api_keys_index_key() -> str:
    """Index of every API key: key id -> hash of its secret (listing without SCAN)."""
    return f"{PREFIX}keys"


def account_key(account: str) -> str:
    """An account's record: its optional parent (the Partner account that owns it)."""
    return f"{PREFIX}acct:{account}"


def children_key(account: str) -> str:
    """The accounts a Partner account owns."""
    return f"{PREFIX}children:{account}"


def numbers_key(channel: str) -> str:
    """A channel's number assignments: destination (no leading '+') -> owning account."""
    return f"{PREFIX}numbers:{channel}"


def bucket_key(key_id: str) -> str:
    """Token bucket of an API key, shared by every gateway instance."""
    return f"{PREFIX}bucket:{key_id}"


def quota_key_prefix(key_id: str) -> str:
    """Prefix of an API key's daily message counters (the UTC day number follows)."""
    return f"{PREFIX}quota:{key_id}:"


KeyOp = Literal["enable", "disable", "delete", "rotate"]


@dataclass(frozen=True, slots=True, eq=False)
class KeyRow:
    """An API key record as found at authentication (hashed by identity: a cached row is the
    same object, so what is derived from it can be remembered with it)."""

    fields: dict[str, str]
    children: frozenset[str]  # accounts owned by the key's account (Partner keys only)
    now_ms: int  # Redis' clock, the one every gateway instance shares


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as stored: its parent ('' none) and who set it ('Admin', 'Partner', or ''
    for a record older than ownership)."""

    account: str
    parent: str
    ownership: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's limits on messages (recipients); 0 means none."""

    key_id: str
    rate: int = 0  # messages per second
    burst: int = 0  # messages at once
    daily_quota: int = 0  # messages per UTC day


@dataclass(frozen=True, slots=True)
class LimitExceeded:
    """Why a request was refused by its key's limits, and when trying again can help."""

    reason: Literal["rate", "burst", "quota"]  # burst: more recipients than the bucket holds
    retry_after_ms: int


_AUTH_KEY = r"""
-- KEYS: the key record. ARGV: touch_every_ms. Returns {record, children, now_ms} or false.
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = {}
for i = 1, #rec, 2 do f[rec[i]] = rec[i + 1] end
-- last-used is worth one write a minute, not one per request
if f.enabled == '1' and tonumber(f.last_used or '0') + tonumber(ARGV[1]) <= now then
  redis.call('HSET', KEYS[1], 'last_used', string.format('%d', now))
end
local children = {}
if string.find(',' .. (f.roles or '') .. ',', ',Partner,', 1, true) then
  children = redis.call('SMEMBERS', 'smsgw:children:' .. (f.account or ''))
end
return {rec, children, now}
"""

_CREATE_KEY = r"""
-- ARGV: secret_hash, fields_json, parent ('': unchanged), owner ('': any account), now
local P = 'smsgw:'
local h, f, parent, owner = ARGV[1], cjson.decode(ARGV[2]), ARGV[3], ARGV[4]
local acct = P .. 'acct:' .. f.account
local known = redis.call('EXISTS', acct) == 1
local cur = redis.call('HGET', acct, 'parent') or ''
if owner ~= '' then
  if known and cur ~= owner then return 'forbidden' end
  parent = owner
end
local kk = P .. 'key:' .. h
if redis.call('EXISTS', kk) == 1 or redis.call('HEXISTS', P .. 'keys', f.id) == 1 then
  return 'exists'
end
if not known then
  redis.call('HSET', acct, 'parent', '', 'created_at', ARGV[5],
             'ownership', owner ~= '' and 'Partner' or 'Admin')
end
if parent ~= '' and parent ~= cur then
  if cur ~= '' then redis.call('SREM', P .. 'children:' .. cur, f.account) end
  redis.call('HSET', acct, 'parent', parent)
  redis.call('SADD', P .. 'children:' .. parent, f.account)
  if owner == '' then redis.call('HSET', acct, 'ownership', 'Admin') end
end
local flat = {}
for k, v in pairs(f) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', kk, unpack(flat))
redis.call('HSET', P .. 'keys', f.id, h)
return 'ok'
"""

_LIST_KEYS = r"""
-- ARGV: key id ('': every key). Each record gets its account's 'parent'.
local P = 'smsgw:'
local idx
if ARGV[1] ~= '' then
  local h = redis.call('HGET', P .. 'keys', ARGV[1])
  idx = h and {ARGV[1], h} or {}
else
  idx = redis.call('HGETALL', P .. 'keys')
end
local out = {}
for i = 1, #idx, 2 do
  local rec = redis.call('HGETALL', P .. 'key:' .. idx[i + 1])
  if #rec > 0 then
    local account = ''
    for j = 1, #rec, 2 do if rec[j] == 'account' then account = rec[j + 1] end end
    local about = redis.call('HMGET', P .. 'acct:' .. account, 'parent', 'ownership')
    rec[#rec + 1] = 'parent'
    rec[#rec + 1] = about[1] or ''
    rec[#rec + 1] = 'ownership'
    rec[#rec + 1] = about[2] or ''
    out[#out + 1] = rec
  end
end
return out
"""

_SET_PARENT = r"""
-- ARGV: account, parent ('' clears). An Admin's explicit choice: ownership becomes 'Admin'.
-- Returns 'unknown' (no such account), 'unknown-parent', or 'ok'.
local P = 'smsgw:'
local name, parent = ARGV[1], ARGV[2]
local acct = P .. 'acct:' .. name
if redis.call('EXISTS', acct) == 0 then return 'unknown' end
if parent ~= '' and redis.call('EXISTS', P .. 'acct:' .. parent) == 0 then
  return 'unknown-parent'
end
local cur = redis.call('HGET', acct, 'parent') or ''
if cur ~= '' then redis.call('SREM', P .. 'children:' .. cur, name) end
if parent ~= '' then redis.call('SADD', P .. 'children:' .. parent, name) end
redis.call('HSET', acct, 'parent', parent, 'ownership', 'Admin')
return 'ok'
"""

_ASSIGN_NUMBER = r"""
-- KEYS: the channel's numbers, the account. ARGV: number, account. 1, or 0 (unknown account).
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_CHANGE_KEY = r"""
-- ARGV: op (enable|disable|delete|rotate), key id, new secret hash (rotate), now. 1 or 0.
local P = 'smsgw:'
local op, id = ARGV[1], ARGV[2]
local h = redis.call('HGET', P .. 'keys', id)
if not h then return 0 end
local kk = P .. 'key:' .. h
if redis.call('EXISTS', kk) == 0 then
  redis.call('HDEL', P .. 'keys', id)
  return 0
end
if op == 'delete' then
  redis.call('DEL', kk, P .. 'bucket:' .. id)
  redis.call('HDEL', P .. 'keys', id)
elseif op == 'rotate' then
  local nk = P .. 'key:' .. ARGV[3]
  redis.call('RENAME', kk, nk)
  redis.call('HSET', nk, 'rotated_at', ARGV[4])
  redis.call('HSET', P .. 'keys', id, ARGV[3])
else
  redis.call('HSET', kk, 'enabled', op == 'enable' and '1' or '0')
end
return 1
"""

class _KeyScripts:
    """The API key scripts, registered once per Store (on first use)."""

    def __init__(self, redis: Redis) -> None:
        self.auth = redis.register_script(_AUTH_KEY)
        self.create = redis.register_script(_CREATE_KEY)
        self.listing = redis.register_script(_LIST_KEYS)
        self.change = redis.register_script(_CHANGE_KEY)
        self.assign = redis.register_script(_ASSIGN_NUMBER)
        self.set_parent = redis.register_script(_SET_PARENT)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A flat [k1, v1, k2, v2, ...] reply as a dict."""
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


# --- Webhooks ----------------------------------------------------------------------------------
#
#   wh:{account}          stream  events waiting for the account's URLs (consumer group
#                                 "hooks"): written by move() and the MO script, deleted once
#                                 delivered (2xx) or dead-lettered
#   wh:dead:{account}     stream  events given up on after the max age, to list and replay
#   wh:accounts           set     accounts that ever had a callback or inbound URL (served)
#   wh:lease:{account}    str     the webhooks process that delivers the account's events
#   wh:notify             pubsub  "{account} {delivered|dead|replayed} {eventId}" lines
#                                 (a message may carry several, one per line)
#   inbound:{channel}     hash    account -> inbound URL for the channel's MO messages
#   mo:in:{account}       list    newest MO ids the account owns (capped)
#   acct:{account}        hash    fields cb_url, cb_secret, in:{channel} (URL per channel);
#                                 cb_events, cb_batch, cb_batch_ms: see "callback options" below

WEBHOOK_GROUP = "hooks"
# One consumer name: a lease makes one process the account's only deliverer, so a successor
# reads its predecessor's unacknowledged events with XREADGROUP ... 0, in order.
WEBHOOK_CONSUMER = "deliverer"
WEBHOOK_NOTIFY = PREFIX + "wh:notify"
DEAD_LETTER_MAXLEN = 100_000


def webhook_stream_key(account: str) -> str:
    """Events waiting for delivery to an account."""
    return f"{PREFIX}wh:{account}"


def dead_letter_key(account: str) -> str:
    """Events given up on for an account."""
    return f"{PREFIX}wh:dead:{account}"


def webhook_accounts_key() -> str:
    """Accounts the webhooks process serves."""
    return f"{PREFIX}wh:accounts"


def webhook_lease_key(account: str) -> str:
    """Which webhooks process delivers an account's events."""
    return f"{PREFIX}wh:lease:{account}"


def inbound_key(channel: str) -> str:
    """Inbound URLs of a channel's MO messages: account -> URL."""
    return f"{PREFIX}inbound:{channel}"


def mo_account_key(account: str) -> str:
    """Newest MO ids routed to an account."""
    return f"{PREFIX}mo:in:{account}"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event read from an account's stream; ``fields`` is None if it was trimmed away."""

    account: str
    entry_id: str
    fields: dict[str, str] | None

    @property
    def queued_ms(self) -> int:
        """When the event was captured (or replayed): the stream id's time part."""
        return int(self.entry_id.partition("-")[0])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event given up on: its fields plus reason, attempts, dead_at and queued_at."""

    dead_id: str
    account: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class WebhookTargets:
    """Where an account's events go, and the secret they are signed with."""

    account: str
    callback_url: str
    secret: str = field(repr=False)
    inbound: Mapping[str, str]  # channel -> URL
    # the callback's statuses and batches
    options: CallbackOptions = field(default_factory=CallbackOptions)


_SET_TARGET = r"""
-- KEYS: account hash, accounts set, channel index ('' for the callback).
-- ARGV: field, url ('' clears), account, new_secret, rotate (1/0).
-- Returns false for an unknown account, else the secret if it was set now, else ''.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local fld, url, acct = ARGV[1], ARGV[2], ARGV[3]
if url == '' then
  redis.call('HDEL', KEYS[1], fld)
  if KEYS[3] ~= '' then redis.call('HDEL', KEYS[3], acct) end
  return ''
end
redis.call('HSET', KEYS[1], fld, url)
if KEYS[3] ~= '' then redis.call('HSET', KEYS[3], acct, url) end
redis.call('SADD', KEYS[2], acct)
if ARGV[5] == '1' or not redis.call('HGET', KEYS[1], 'cb_secret') then
  redis.call('HSET', KEYS[1], 'cb_secret', ARGV[4])
  return ARGV[4]
end
return ''
"""

_WEBHOOK_DONE = r"""
-- KEYS: stream, dead-letter stream. ARGV: entry id, event id, account, outcome
-- ('delivered' or 'dead'), then for 'dead': field/value pairs to keep with it.
-- Acknowledge and delete in one step, so an event is never both gone and undelivered.
if ARGV[4] == 'dead' then
  local extra = {}
  for i = 5, #ARGV do extra[#extra + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(DEAD_MAX), '*', unpack(extra))
end
redis.call('XACK', KEYS[1], 'hooks', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', 'smsgw:wh:notify', ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[2])
return 1
""".replace("DEAD_MAX", str(DEAD_LETTER_MAXLEN))

_REPLAY = r"""
-- KEYS: dead-letter stream, stream. ARGV: account, ids... (none: every dead letter).
-- Each goes back to the stream as a new event (its age counts from now), in its order.
local entries
if #ARGV > 1 then
  entries = {}
  for i = 2, #ARGV do
    local got = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    if #got > 0 then entries[#entries + 1] = got[1] end
  end
else
  entries = redis.call('XRANGE', KEYS[1], '-', '+')
end
local skip = {reason=true, attempts=true, dead_at=true, queued_at=true, last=true}
for _, e in ipairs(entries) do
  local f, keep = e[2], {}
  for j = 1, #f, 2 do
    if not skip[f[j]] then keep[#keep + 1] = f[j]; keep[#keep + 1] = f[j + 1] end
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(WH_MAX), '*', unpack(keep))
  redis.call('XDEL', KEYS[1], e[1])
  redis.call('PUBLISH', 'smsgw:wh:notify', ARGV[1] .. ' replayed ' .. e[1])
end
return #entries
""".replace("WH_MAX", str(WEBHOOK_STREAM_MAXLEN))


class WebhookStore:
    """Webhook configuration, event streams, dead letters and delivery leases."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._set_target = redis.register_script(_SET_TARGET)
        self._done = redis.register_script(_WEBHOOK_DONE)
        self._replay = redis.register_script(_REPLAY)
        self._acquire = redis.register_script(_ACQUIRE_LEASE)
        self._renew = redis.register_script(_RENEW_LEASE)
        self._release = redis.register_script(_RELEASE_LEASE)

    async def set_callback(
        self, account: str, url: str, *, new_secret: str, rotate: bool = False
    ) -> str | None:
        """Set ('' clears) an account's callback URL; None if the account is unknown, else the
        signing secret if it was set now (first URL of the account, or ``rotate``), else ''."""
        return await self._set(account, "cb_url", url, "", new_secret, rotate)

    async def set_inbound(
        self, account: str, channel: str, url: str, *, new_secret: str, rotate: bool = False
    ) -> str | None:
        """Set ('' clears) an account's inbound URL for a channel's MO messages; as
        :meth:`set_callback`."""
        return await self._set(account, f"in:{channel}", url, inbound_key(channel), new_secret,
                               rotate)

    async def _set(self, account: str, fld: str, url: str, index: str, secret: str,
                   rotate: bool) -> str | None:
        raw = await self._set_target(
            keys=[account_key(account), webhook_accounts_key(), index],
            args=[fld, url, account, secret, "1" if rotate else "0"])
        return None if raw is None else _text(raw)

    async def targets(self, account: str) -> WebhookTargets | None:
        """An account's URLs and secret; None if the account is unknown."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(account_key(account))
        (row,) = await pipe.execute()
        if not row:
            return None
        f = _decode(row)
        return WebhookTargets(
            account=account, callback_url=f.get("cb_url", ""), secret=f.get("cb_secret", ""),
            inbound={k[3:]: v for k, v in f.items() if k.startswith("in:")},
            options=_callback_options(f))

    async def hooked_accounts(self) -> list[str]:
        """Every account that ever had a webhook URL."""
        return sorted(_text(a) for a in await self._redis.smembers(  # type: ignore[misc]
            webhook_accounts_key()))

    async def ensure_group(self, account: str) -> None:
        """Create the account's stream and consumer group (reading from its start) if needed."""
        try:
            await self._redis.xgroup_create(webhook_stream_key(account), WEBHOOK_GROUP, id="0",
                                            mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_events(
        self, cursors: Mapping[str, str], *, count: int, block_ms: int | None
    ) -> list[WebhookEvent]:
        """Events of several accounts in one call. A cursor of ``">"`` reads new events (and
        may block); any other id re-reads the unacknowledged events after it."""
        if not cursors:
            return []
        streams = {webhook_stream_key(a): c for a, c in cursors.items()}
        rows = await self._redis.xreadgroup(WEBHOOK_GROUP, WEBHOOK_CONSUMER, streams,  # type: ignore[arg-type]
                                            count=count, block=block_ms)
        prefix = len(webhook_stream_key(""))
        return [
            WebhookEvent(account=_text(stream)[prefix:], entry_id=_text(entry_id),
                         fields=_decode(values) if values else None)
            for stream, entries in rows or []
            for entry_id, values in entries
        ]

    async def delivered(self, event: WebhookEvent, event_id: str) -> None:
        """The event reached its URL: acknowledge and delete it."""
        await self._done(keys=[webhook_stream_key(event.account), dead_letter_key(event.account)],
                         args=[event.entry_id, event_id, event.account, "delivered"])

    async def dead_letter(
        self, event: WebhookEvent, event_id: str, *, reason: str, attempts: int
    ) -> None:
        """Give up on the event: move it to the account's dead letters, atomically."""
        keep = dict(event.fields or {})
        keep.update(reason=reason, attempts=str(attempts), dead_at=str(now_ms()),
                    queued_at=str(event.queued_ms))
        flat = [x for pair in keep.items() for x in pair]
        await self._done(keys=[webhook_stream_key(event.account), dead_letter_key(event.account)],
                         args=[event.entry_id, event_id, event.account, "dead", *flat])

    async def dead_letters(self, account: str, limit: int) -> list[DeadLetter]:
        """An account's newest dead letters, newest first."""
        rows = await self._redis.xrevrange(dead_letter_key(account), count=limit)
        return [DeadLetter(dead_id=_text(i), account=account, fields=_decode(f)) for i, f in rows]

    async def replay(self, account: str, dead_ids: Sequence[str] = ()) -> int:
        """Queue dead letters (all, or those listed) for delivery again; how many were."""
        return int(await self._replay(keys=[dead_letter_key(account), webhook_stream_key(account)],
                                      args=[account, *dead_ids]))

    async def acquire_lease(self, account: str, owner: str, ttl_ms: int) -> bool:
        """Become the account's deliverer if no live process is."""
        return int(await self._acquire(keys=[webhook_lease_key(account)],
                                       args=[owner, ttl_ms])) == 0

    async def renew_lease(self, account: str, owner: str, ttl_ms: int) -> bool:
        """Extend a held lease; False if it was lost."""
        return bool(await self._renew(keys=[webhook_lease_key(account)], args=[owner, ttl_ms]))

    async def release_lease(self, account: str, owner: str) -> None:
        """Hand the account over at once (clean stop)."""
        await self._release(keys=[webhook_lease_key(account)], args=[owner])

    async def account_mo(self, account: str, limit: int) -> list[dict[str, str]]:
        """The newest MO messages an account owns, newest first."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(mo_account_key(account), 0, limit - 1)
        (ids,) = await pipe.execute()
        for mo_id in ids:
            pipe.hgetall(f"{PREFIX}mo:{_text(mo_id)}")
        return [_decode(row) for row in await pipe.execute() if row] if ids else []

    # --- Webhooks, issue 14: callback options and batched acknowledgements --------------------
    # (the scripts and _callback_options() follow the class)

    async def set_callback_options(
        self, account: str, *, events: Sequence[str] | None, max_batch: int | None,
        max_batch_delay_ms: int | None,
    ) -> bool:
        """Choose the callback's statuses (``events``: None keeps them, ``()`` every status)
        and batches (None keeps a value); False if the account is unknown."""
        chosen = "" if events is None else "*" if not events else f",{','.join(events)},"
        return bool(await self._set_options(keys=[account_key(account)], args=[
            chosen, "" if max_batch is None else max_batch,
            "" if max_batch_delay_ms is None else max_batch_delay_ms]))

    async def clear_callback_options(self, account: str) -> None:
        """Back to every status, one event per POST (the callback was cleared)."""
        await self._redis.hdel(account_key(account), *_OPTION_FIELDS)  # type: ignore[misc]

    async def acknowledge(self, account: str, events: Sequence[tuple[str, str]]) -> None:
        """Events (entry id, event id) that reached their URL: acknowledged and deleted in one
        step, and announced on ``wh:notify`` in one message (a line per event)."""
        if events:
            await self._ack_many(keys=[webhook_stream_key(account)],
                                 args=[account, *(x for pair in events for x in pair)])

    @functools.cached_property
    def _set_options(self) -> AsyncScript:
        return self._redis.register_script(_SET_CALLBACK_OPTIONS)

    @functools.cached_property
    def _ack_many(self) -> AsyncScript:
        return self._redis.register_script(_WEBHOOK_ACK_MANY)


# Callback options, fields of acct:{account}: cb_events ",delivered,failed," (absent: every
# status; read by capture() in _COMMON_LUA, so a status not chosen is never written to the
# stream), cb_batch (events per POST, absent: 1), cb_batch_ms (linger, absent: the default).
_OPTION_FIELDS = ("cb_events", "cb_batch", "cb_batch_ms")

_SET_CALLBACK_OPTIONS = r"""
-- KEYS: account hash. ARGV: events (',a,b,'; '*' every status; '' unchanged), max batch,
-- max batch delay ms ('' unchanged). Returns 0 for an unknown account, else 1.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '*' then redis.call('HDEL', KEYS[1], 'cb_events')
elseif ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'cb_events', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'cb_batch', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'cb_batch_ms', ARGV[3]) end
return 1
"""

_WEBHOOK_ACK_MANY = r"""
-- KEYS: stream. ARGV: account, then (entry id, event id) pairs: events delivered (2xx).
-- Acknowledge and delete in one step, so an event is never both gone and undelivered.
local ids, lines = {}, {}
for i = 2, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  lines[#lines + 1] = ARGV[1] .. ' delivered ' .. ARGV[i + 1]
end
redis.call('XACK', KEYS[1], 'hooks', unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
redis.call('PUBLISH', 'smsgw:wh:notify', table.concat(lines, '\n'))
return #ids
"""


def _callback_options(f: Mapping[str, str]) -> CallbackOptions:
    chosen = f.get("cb_events")
    batch, delay = f.get("cb_batch", ""), f.get("cb_batch_ms", "")
    default = CallbackOptions()
    return CallbackOptions(
        events=None if chosen is None else frozenset(s for s in chosen.split(",") if s),
        max_batch=int(batch) if batch.isdigit() else default.max_batch,
        max_batch_delay_ms=int(delay) if delay.isdigit() else default.max_batch_delay_ms)
