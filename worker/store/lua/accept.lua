--[[
  Accepts several requests in one script run, each all-or-nothing on its own: a request over
  its key's limits stores nothing, an error in one (caught by pcall) is that request's answer
  alone. Stores each new message's record m:{id}, its clientMessageId index c:{account}:{cmid},
  its channel's due index pending:{channel}, and enqueues the wake-up job if any is new. A
  scheduled message is due (next_at) at its time and its record kept for retention after it.
    Input:
      KEYS[1] the wake-up job's key (arq:job:{job_id})
      KEYS[2] the arq queue
      ARGV[1] now (ms)
      ARGV[2] retention (s)
      ARGV[3] grace (ms): new messages are due at now + grace
      ARGV[4] job id
      ARGV[5] job payload
      ARGV[6] job expiry (ms)
      ARGV[7] requests, JSON: [{w = window_ms, m = [{id, account, cmid, fp, channel, to,
              content, enc, seg, rt?, ch? (route, chain: routed messages), door?, notify?,
              src? (messages that came in over SMPP), snd? (the sender, if one was chosen),
              at? (scheduled: due then, ms), vu? (valid until, ms)}], lim = [bucket key,
              quota key prefix, rate, burst, quota]}]
              (lim absent: no limits)
    Output:
      JSON, one answer per request, in order: {k = kinds, r = ids} (a letter per message:
      n new, d duplicate, c conflict; r the earlier id of each duplicate, in order),
      {limited = 'rate'|'burst'|'quota', retry_ms = ms}, or {err = text}.
    Events:
      none published; counts 'accepted' per channel in stats:{minute}, and a routed
      message's route and channel as "route:{route}|routed:{channel}" (ROUTE_STAT).
]]
--- @include "keys"
--- @include "stats"
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
local fresh, due = 0, {}
local function remembered(m, window)
  -- The idempotency record of (account, cmid): an earlier answer, or nil after noting this one.
  local ck = P .. 'c:' .. m.account .. ':' .. m.cmid
  local got = redis.call('HMGET', ck, '_at', '_fp', m.to)
  local live = now - tonumber(got[1] or '0') <= window
  if live then
    if got[2] and got[2] ~= m.fp then return 'c', nil end
    if got[3] then return 'd', got[3] end
    redis.call('HSET', ck, m.to, m.id, '_fp', m.fp)
  else  -- none, or one older than the window: this message starts a new one
    redis.call('DEL', ck)
    redis.call('HSET', ck, m.to, m.id, '_fp', m.fp, '_at', now)
  end
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
    'status', 'queued', 'attempts', 0, 'accepted_at', now, 'tr', queued_tr,
    'route', m.rt or '', 'chain', m.ch or '')
  if m.door then
    redis.call('HSET', key, 'door', m.door, 'notify', m.notify, 'src', m.src)
  end
  if m.snd then
    redis.call('HSET', key, 'sender', m.snd)
  end
  local at, keep = now + grace, retention
  if m.at then
    redis.call('HSET', key, 'sched_at', m.at, 'next_at', m.at)
    at, keep = math.max(at, m.at), retention + math.max(0, math.ceil((m.at - now) / 1000))
  end
  if m.vu then redis.call('HSET', key, 'valid_until', m.vu) end
  redis.call('EXPIRE', key, keep)
  -- Due-index entries are added together at the end, one ZADD per channel and chunk.
  local d = due[m.channel]
  if not d then d = {}; due[m.channel] = d end
  d[#d + 1] = at
  d[#d + 1] = m.id
  fresh = fresh + 1
  count(m.channel, 'accepted', now)
  if m.rt and m.rt ~= '' then count(ROUTE_STAT .. m.rt, 'routed:' .. m.channel, now) end
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
flush_run()  -- the counts (no events: accepting is not a transition)
return cjson.encode(answers)
