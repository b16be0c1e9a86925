"""The Lua scripts, as Python strings (moving to lua/*.lua)."""

from __future__ import annotations

import json

from worker.lifecycle import ALLOWED, FINAL, SEVERITY
from worker.store.bounds import (
    DEAD_LETTER_MAXLEN,
    FAILURES_KEPT,
    HELD_QUEUE_MAX,
    STATS_TTL_SECONDS,
    WEBHOOK_STATES,
    WEBHOOK_STREAM_MAXLEN,
)
from worker.store.keys import EVENTS, PREFIX

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


_HOOKED_LUA = (
    "local HOOKED = {" + ",".join(f"[{json.dumps(str(s))}]=true" for s in sorted(WEBHOOK_STATES))
    + f"}}\nlocal WH_MAXLEN = {WEBHOOK_STREAM_MAXLEN}\n"
)


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
local callbacks = {}  -- account -> its callback URL, or false: looked up once per script run
local function capture(key, account, dst, at)
  -- A webhook event is written by the script that makes the transition, so a crash can
  -- neither lose one nor invent one. Accounts without a callback cost one HGET per run.
  if not HOOKED[dst] or not account then return end
  local url = callbacks[account]
  if url == nil then
    url = redis.call('HGET', P .. 'acct:' .. account, 'cb_url')
    callbacks[account] = url
  end
  if not url then return end
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
