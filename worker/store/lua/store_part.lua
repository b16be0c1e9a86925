--[[
  One part of a message an SMPP client concatenated itself (UDH or SAR), or the sweep of a
  group whose wait ran out. The part is stored, or the message made, in this one run: the part
  that completes its group is stored only together with the message joined from every part
  (the caller builds it: decoding and validation are Python's), so a crash can never leave a
  complete group without its message, or make two.
    Input:
      KEYS[1] the group smpp:parts:{account}:{src}:{to}:{bits}:{ref} (hash: id, total, dc,
              first, account, channel, to, notify, src, snd, at, vu, rt, ch, done; p:{seq} the
              octets and d:{seq} their SHA-1 of each part stored; t:{seq} the id a part was
              answered with when it came kept aside; once sent, r:{seq} a part kept aside:
              a repeat, or a new message's part that reuses the ref with the same octets)
      KEYS[2] the groups' due index smpp:parts:due (group key -> when its wait ends)
      KEYS[3] the wake-up job's key, KEYS[4] the arq queue
      ARGV[1] now (ms)  ARGV[2] retention (s)  ARGV[3] grace (ms)  ARGV[4] job id
      ARGV[5] job payload  ARGV[6] job expiry (ms)  ARGV[7] the wait (ms)
      ARGV[8] the part, JSON: {id (the message's id if the group is new), account, channel,
              to, notify, src, snd?, at?, vu?, rt?, ch? (sender, schedule, validity, route
              and chain, as accept.lua's: the first part's), total, seq, dc, lim? (as
              accept.lua's)}; seq 0: the sweep,
              which sends what arrived once the group's wait has run out
      ARGV[9] the part's octets (after its UDH)
      ARGV[10] the message built from the parts, JSON {content, enc, seg, sum}, or '':
              sum is "{seq}:{sha1 of its octets}," for each part it joined, in order
    Output: an array,
      {'stored', id}   the part is stored (rate and quota counted per part)
      {'again', id}    the same part was stored before (or sent): nothing changes
      {'sent', id}     the message is made (from every part, or from what arrived)
      {'need', id, total, dc, channel, to, seq, octets, ...}  the message must be built from
                       these parts (every part, this one included, or what arrived) first
      {'refused', why} total, dc or seq contradict the group's (why: total, dcs, seq)
      {'limited', 'rate'|'burst'|'quota', retry_ms}
      {'gone'}         (sweep) the group was sent or removed; {'early'} its wait is not over
    Events: none published; the message is counted 'accepted' as accept.lua counts it.
]]
--- @include "keys"
--- @include "stats"
--- @include "limits"
--- @include "admit"
local now, retention, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = tonumber(ARGV[7])
local part = cjson.decode(ARGV[8])
local octets = ARGV[9]
local built = ARGV[10] ~= '' and cjson.decode(ARGV[10]) or nil
local group = KEYS[1]

-- A new group that takes over a sent one's tombstone starts with the parts kept aside there
-- (seq -> {octets, digest, the id their client was answered with}); see kept_aside().
local seeds = {}
local function stored()
  -- The seqs stored (or seeded), ascending.
  local seqs = {}
  for s in pairs(seeds) do seqs[#seqs + 1] = s end
  for _, f in ipairs(redis.call('HKEYS', group)) do
    if string.sub(f, 1, 2) == 'p:' then seqs[#seqs + 1] = tonumber(string.sub(f, 3)) end
  end
  table.sort(seqs)
  return seqs
end
local function sum(seqs, seq, digest)
  -- What the caller's message must have been built from: these parts (seq's digest given).
  local out = {}
  for i, s in ipairs(seqs) do
    local d = s == seq and digest or (seeds[s] and seeds[s][2])
              or redis.call('HGET', group, 'd:' .. s)
    out[i] = s .. ':' .. d .. ','
  end
  return table.concat(out)
end
local function need(id, g, seqs, seq)
  local out = {'need', id, g[2], g[3], g[5], g[6]}
  for _, s in ipairs(seqs) do
    out[#out + 1] = s
    out[#out + 1] = s == seq and octets or (seeds[s] and seeds[s][1])
                    or redis.call('HGET', group, 'p:' .. s)
  end
  return out
end
local function kept_aside(sent_id, seq)
  -- The parts a sent group kept aside (repeats of its parts, or a new message's that reuses
  -- the ref with the same text), but seq's: this part, no repeat, is the new message's.
  local got = redis.call('HGETALL', group)
  for i = 1, #got, 2 do
    local f = got[i]
    if string.sub(f, 1, 2) == 'r:' then
      local s = tonumber(string.sub(f, 3))
      if s ~= seq then seeds[s] = {got[i + 1], redis.sha1hex(got[i + 1]), sent_id .. '-' .. s} end
    end
  end
end
local function send(id, seqs, total)
  -- The one message, from the group's parts; the group stays as a tombstone for the wait,
  -- so a part sent again is answered 'again', not made a new message.
  local m = redis.call('HMGET', group, 'account', 'channel', 'to', 'notify', 'src', 'snd', 'at',
                       'vu', 'rt', 'ch')
  local ids = {}
  for i, s in ipairs(seqs) do  -- a part kept aside keeps the id its client was answered with
    ids[i] = redis.call('HGET', group, 't:' .. s) or (id .. '-' .. s)
  end
  admit({id = id, account = m[1], cmid = '', channel = m[2], to = m[3], content = built.content,
         enc = built.enc, seg = built.seg, door = 'smpp', notify = m[4], src = m[5],
         snd = m[6] ~= '' and m[6] or nil, at = tonumber(m[7] or ''), vu = tonumber(m[8] or ''),
         rt = m[9], ch = m[10],
         parts = table.concat(ids, ','), concat = #seqs .. '/' .. total},
        now, retention, grace)
  admit_done(KEYS[3], KEYS[4], now, ARGV[4], ARGV[5], tonumber(ARGV[6]))
  for _, s in ipairs(seqs) do redis.call('HDEL', group, 'p:' .. s) end
  redis.call('HSET', group, 'done', '1')
  redis.call('PEXPIRE', group, math.max(wait, 1000))
  redis.call('ZREM', KEYS[2], group)
  flush_run()
  return {'sent', id}
end

-- id, total, dc, done, channel, to, first
local g = redis.call('HMGET', group, 'id', 'total', 'dc', 'done', 'channel', 'to', 'first')

if part.seq == 0 then  -- the sweep
  if not g[1] or g[4] == '1' then
    redis.call('ZREM', KEYS[2], group)
    return {'gone'}
  end
  if tonumber(g[7]) + wait > now then return {'early'} end
  local seqs = stored()
  if not built or built.sum ~= sum(seqs) then return need(g[1], g, seqs) end
  return send(g[1], seqs, tonumber(g[2]))
end

local seq, digest = part.seq, redis.sha1hex(octets)
local renewed = false  -- a sent group's tombstone gives way to a new message's group
if g[1] then
  local earlier = redis.call('HGET', group, 'd:' .. seq)
  if earlier == digest then
    if g[4] == '1' then
      -- Sent: a repeat, or the first part of a new message that reuses the ref with the same
      -- text. Kept aside until a part that is no repeat shows which (kept_aside()).
      redis.call('HSET', group, 'r:' .. seq, octets)
    end
    return {'again', g[1]}
  end
  if g[4] == '1' then  -- sent, and this is no repeat: a new message that reuses the ref
    if tonumber(g[2]) == part.total and tonumber(g[3]) == part.dc then kept_aside(g[1], seq) end
    renewed, g = true, {}
  elseif tonumber(g[2]) ~= part.total then
    return {'refused', 'total'}
  elseif tonumber(g[3]) ~= part.dc then
    return {'refused', 'dcs'}
  elseif earlier and not redis.call('HGET', group, 't:' .. seq) then
    return {'refused', 'seq'}
  end
  -- (a seq whose part was kept aside, and differs now: that one was a repeat after all, and
  -- this one replaces it)
end
local id = g[1] or part.id
local seqs = stored()
local replacing = false  -- seq is a part kept aside that this one replaces
for _, s in ipairs(seqs) do replacing = replacing or s == seq end
local complete = #seqs + (replacing and 0 or 1) == part.total
if complete then
  if not replacing then seqs[#seqs + 1] = seq end
  table.sort(seqs)
  if not built or built.sum ~= sum(seqs, seq, digest) then
    if not g[1] then g = {id, part.total, part.dc, false, part.channel, part.to} end
    return need(id, g, seqs, seq)
  end
end
if part.lim then
  local refusal = limited(part.lim, 1)
  if refusal then return {'limited', refusal.limited, refusal.retry_ms} end
end
if renewed then redis.call('DEL', group) end
if not g[1] then
  redis.call('HSET', group, 'id', id, 'total', part.total, 'dc', part.dc, 'first', now,
             'account', part.account, 'channel', part.channel, 'to', part.to,
             'notify', part.notify, 'src', part.src, 'snd', part.snd or '',
             'at', part.at or '', 'vu', part.vu or '', 'rt', part.rt or '', 'ch', part.ch or '')
  redis.call('ZADD', KEYS[2], now + wait, group)
end
for s, kept in pairs(seeds) do
  redis.call('HSET', group, 'p:' .. s, kept[1], 'd:' .. s, kept[2], 't:' .. s, kept[3])
end
redis.call('HSET', group, 'p:' .. seq, octets, 'd:' .. seq, digest)
redis.call('HDEL', group, 't:' .. seq)
redis.call('EXPIRE', group, retention)
if complete then return send(id, seqs, part.total) end
return {'stored', id}
