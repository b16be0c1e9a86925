--[[
  A new message: its record, its due entry and the wake-up job, as accept.lua and
  store_part.lua write them.
    admit(m, now, retention, grace)   stores m:{id} (m as accept.lua's ARGV[7] gives a message,
                      plus optional parts, concat: a message joined from an SMPP client's
                      parts) and notes its due entry at now + grace (a scheduled one's at
                      its time); counts 'accepted'
    admit_done(job_key, queue, now, job_id, payload, expiry_ms)   if any message is new,
                      enqueues the wake-up job (flush_run() writes the due entries noted);
                      adds the scheduled ones to their channel's sched:{channel} (id -> its
                      time, for the status page; entries whose time has passed are dropped)
  Events: none published (accepting is not a transition).
]]
--- @include "keys"
--- @include "stats"
--- @include "num"
local fresh = 0
local scheduled = {}  -- channel -> {at, id, ...}: the run's scheduled messages
local queued_tr, queued_at = nil, nil  -- every record's first transition, built once per now
local function add(fields, ...)
  -- Appends name, value pairs; a value missing is an error, as it was as an HSET argument.
  local n = #fields
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    if v == nil then error('admit: no value for ' .. tostring(select(i - 1, ...))) end
    fields[n + i] = v
  end
end
local function admit(m, now, retention, grace)
  if queued_at ~= now then
    queued_tr, queued_at = '[["queued",' .. string.format('%d', now) .. ',""]]', now
  end
  local key = M .. 'm:' .. m.id
  local more = {}  -- the fields only some messages have, written by the same HSET
  if m.door then add(more, 'door', m.door, 'notify', m.notify, 'src', m.src) end
  if m.parts then add(more, 'parts', m.parts, 'concat', m.concat) end
  if m.snd then add(more, 'sender', m.snd) end
  local at, keep = now + grace, retention
  if m.at then  -- scheduled: due at its time, and kept for the retention after it
    add(more, 'sched_at', text(m.at), 'next_at', text(m.at))
    at, keep = math.max(at, m.at), retention + math.max(0, math.ceil((m.at - now) / 1000))
    local s = scheduled[m.channel]
    if not s then s = {}; scheduled[m.channel] = s end
    add(s, text(m.at), m.id)
  end
  if m.vu then add(more, 'valid_until', text(m.vu)) end
  redis.call('HSET', key, 'id', m.id, 'account', m.account, 'cmid', m.cmid,
    'channel', m.channel, 'to', m.to, 'content', m.content, 'enc', m.enc, 'seg', text(m.seg),
    'status', 'queued', 'attempts', '0', 'accepted_at', num(now), 'tr', queued_tr,
    'route', m.rt or '', 'chain', m.ch or '', unpack(more))
  redis.call('EXPIRE', key, num(keep))
  due_set(m.channel, m.id, at)
  fresh = fresh + 1
  count(m.channel, 'accepted', now)
  if m.rt and m.rt ~= '' then count(ROUTE_STAT .. m.rt, 'routed:' .. m.channel, now) end
  return 'n'
end
local function admit_done(job_key, queue, now, job_id, payload, expiry_ms)
  for channel, s in pairs(scheduled) do
    local key = M .. 'sched:' .. channel
    redis.call('ZREMRANGEBYSCORE', key, '-inf', text(now))
    for i = 1, #s, 1000 do  -- unpack() has a limit on the number of values
      redis.call('ZADD', key, unpack(s, i, math.min(i + 999, #s)))
    end
  end
  scheduled = {}
  if fresh > 0 then
    redis.call('PSETEX', job_key, expiry_ms, payload)
    redis.call('ZADD', queue, now, job_id)
  end
end
