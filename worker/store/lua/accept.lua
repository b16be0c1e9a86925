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
--- @include "limits"
--- @include "admit"
local now, retention, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function remembered(m, window)
  -- The idempotency record of (account, cmid): an earlier answer, or nil after noting this one.
  local ck = M .. 'c:' .. m.account .. ':' .. m.cmid
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
  local ck = M .. 'c:' .. m.account .. ':' .. m.cmid
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
    kinds[i] = kind or admit(m, now, retention, grace)
    if ref then refs[#refs + 1] = ref end
  end
  return {k = table.concat(kinds), r = refs}
end
local answers = {}
for i, req in ipairs(cjson.decode(ARGV[7])) do
  local ok, res = pcall(accept, req)
  answers[i] = ok and res or {err = tostring(res)}
end
admit_done(KEYS[1], KEYS[2], now, ARGV[4], ARGV[5], tonumber(ARGV[6]))
flush_run()  -- the counts (no events: accepting is not a transition)
return cjson.encode(answers)
