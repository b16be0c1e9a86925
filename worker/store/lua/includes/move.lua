--[[
  A message's transitions: every status change of every script goes through move().
    fetch(key, ...)   the fields move() needs and the caller's own, in one HMGET
    fetch_all(key)    every field, in one HGETALL (cheaper when a caller needs most of them)
    move(key, f, dst, at, detail, extra)   true if the lifecycle allows cur -> dst: writes it,
                      appends the transition, counts it, frees the concatenation ref once
                      every part is answered, drops a settled message from its due index
  Events: each move adds "{id} {dst}" to the run's events (published by flush_run()), an
  account with a callback URL gets a 'status' entry on its message's webhook stream
  wh:{account}:{shard} (includes/webhooks.lua), and a
  message that came in over SMPP a 'receipt' entry on smpp:rcpt:{account} for the states its
  client asked for (one per part id, field parts, when the client concatenated it itself).
]]
--- @include "keys"
--- @include "num"
--- @include "lifecycle"
--- @include "bounds"
--- @include "stats"
--- @include "webhooks"
local callbacks = {}  -- account -> {url, chosen statuses or false}: looked up once per run
-- A webhook event's fields besides those fetch() reads for move() (channel, to, door): read
-- by the first event of a run, and by fetch() with the rest of the record once a run has
-- written one (its next messages are likely its account's too); ALL marks a record read
-- whole (fetch_all()), which has them all.
local EVENT_FIELDS = {'cmid', 'err_code', 'err_text', 'dlr_stat', 'dlr_err'}
local ALL = {}
local hooked = false  -- the run has written a webhook event
local function event_fields(key, f)
  -- f with the event's fields: those neither read nor written yet are read now (a move
  -- writes err_code and err_text, a receipt dlr_stat and dlr_err, into f as into the record).
  local missing = {}
  for _, name in ipairs(EVENT_FIELDS) do
    if f[name] == nil and not f[ALL] then missing[#missing + 1] = name end
  end
  if #missing > 0 then
    local got = redis.call('HMGET', key, unpack(missing))
    for i, name in ipairs(missing) do f[name] = got[i] end
  end
  return f
end
local function capture(key, f, dst, at)
  -- A webhook event is written by the script that makes the transition, so a crash can
  -- neither lose one nor invent one. Accounts without a callback cost one HMGET per run, and
  -- a status the account did not choose (events: ",delivered,failed,") costs no more. The
  -- settings are the shard's copy cb:{account} (copy_callback.lua), on the messages' slot.
  -- Its fields come from f, as move() has just written them.
  local account = f.account
  if not HOOKED[dst] or not account then return end
  local cb = callbacks[account]
  if cb == nil then
    cb = redis.call('HMGET', M .. 'cb:' .. account, 'url', 'events')
    callbacks[account] = cb
  end
  if not cb[1] then return end
  if cb[2] and not string.find(cb[2], ',' .. dst .. ',', 1, true) then return end
  hooked = true
  event_fields(key, f)
  local id = string.sub(key, #M + 3)
  redis.call('XADD', webhook_stream(account, id), 'MAXLEN', '~', WH_MAXLEN, '*', 'kind', 'status',
             'id', id, 'status', dst, 'cmid', f.cmid or '',
             'channel', f.channel or '', 'to', f.to or '', 'code', f.err_code or '',
             'text', f.err_text or '', 'stat', f.dlr_stat or '', 'err', f.dlr_err or '',
             'at', text(at), 'door', f.door or 'http')
end
local function smpp_notify(key, f, dst, at)
  -- A message that came in over SMPP: its client hears of the states it asked for (its
  -- registered_delivery, as f.notify) on its account's SMPP receipt stream smpp:rcpt:{account},
  -- written here by the script that makes the transition, like a webhook event; the SMPP
  -- server reads it (gateway/smpp_server/receipts.py).
  local want = f.notify or ''
  if FINAL[dst] then
    if not string.find(want, 'f', 1, true)
       and not (string.find(want, 'x', 1, true) and dst ~= 'delivered') then return end
  elseif not (string.find(want, 'i', 1, true) and (dst == 'submitted' or dst == 'unknown')) then
    return
  end
  local g = redis.call('HMGET', key, 'accepted_at', 'content', 'src', 'dlr_err', 'err_code',
                       'parts')
  -- A message the client concatenated itself: one receipt per part id it was given.
  local ids = g[6] or string.sub(key, #M + 3)
  for id in string.gmatch(ids, '[^,]+') do
    redis.call('XADD', M .. 'smpp:rcpt:' .. f.account, 'MAXLEN', '~', WH_MAXLEN, '*',
               'kind', 'receipt', 'id', id, 'status', dst, 'to', f.to or '',
               'src', g[3] or '', 'submitted', g[1] or '', 'at', text(at), 'err', g[4] or '',
               'code', g[5] or '', 'text', string.sub(g[2] or '', 1, 80))
  end
end
local function fetch(key, ...)
  -- The fields move() needs and the caller's own, in one HMGET, by name (false if absent),
  -- and a webhook event's once the run has written one.
  local names = {'status', 'account', 'channel', 'tr', 'ref', 'to', 'door', 'notify', ...}
  if hooked then
    for _, name in ipairs(EVENT_FIELDS) do names[#names + 1] = name end
  end
  local got = redis.call('HMGET', key, unpack(names))
  -- Built whole by one constructor (sized once) rather than grown a field at a time.
  local f = {status = got[1], account = got[2], channel = got[3], tr = got[4], ref = got[5],
             to = got[6], door = got[7], notify = got[8]}
  for i = 9, #names do f[names[i]] = got[i] end
  return f
end
local function fetch_all(key)
  -- Every field of the record (nil if absent), for a caller that needs most of them: one
  -- HGETALL costs Redis less than an HMGET of as many names on a small (ziplist or listpack) record,
  -- which looks each name up by a scan of the record.
  local got = redis.call('HGETALL', key)
  -- Sized once for a record's usual fields: a constructor's fields size its table even when
  -- nil, so the loop below does not grow it a field at a time.
  local f = {[ALL] = true, id = nil, account = nil, cmid = nil, channel = nil, to = nil,
             content = nil, enc = nil, seg = nil, status = nil, attempts = nil,
             accepted_at = nil, tr = nil, route = nil, chain = nil, worker = nil}
  for i = 1, #got, 2 do f[got[i]] = got[i + 1] end
  return f
end
local function appended(tr, entry)
  -- The transitions with one more: the stored JSON text with the entry spliced in before its
  -- closing bracket is what decoding, appending and encoding again gives (cjson writes back
  -- what it read byte for byte), without the trip through Lua tables.
  if tr and #tr > 2 and string.sub(tr, 1, 1) == '[' and string.sub(tr, -1) == ']' then
    -- entry = {status, at, detail}: the status is a plain word, and the rest are written
    -- as cjson.encode(entry) would write them
    return string.sub(tr, 1, -2) .. ',["' .. entry[1] .. '",' .. num(entry[2]) .. ',' ..
           cjson.encode(entry[3]) .. ']]'
  end
  local list = cjson.decode(tr or '[]')
  list[#list + 1] = entry
  return cjson.encode(list)
end
local function free_ref(key, f, channel)
  -- The concatenation ref the message holds on ``channel``, freed for the next message to its
  -- number, and off the record, so no later move frees a ref another message has taken since.
  redis.call('HDEL', M .. 'ref:' .. channel .. ':' .. f.to, f.ref)
  redis.call('HDEL', key, 'ref')
  f.ref = false
end
local function move(key, f, dst, at, detail, extra)
  -- f: the record's fields from fetch(); kept up to date with what this move writes, so the
  -- caller may move the same record again without reading it back.
  local cur = f.status
  if not cur then return false end
  if not ALLOWED[cur][dst] then return false end
  extra = extra or {}
  local tr = appended(f.tr, {dst, at, detail or ''})
  for i = 2, #extra, 2 do extra[i] = text(extra[i]) end
  redis.call('HSET', key, 'status', dst, 'tr', tr, unpack(extra))
  f.status, f.tr = dst, tr
  for i = 1, #extra, 2 do f[extra[i]] = extra[i + 1] end
  local id = string.sub(key, #M + 3)
  events[#events + 1] = id .. ' ' .. dst
  capture(key, f, dst, at)
  if f.door == 'smpp' then smpp_notify(key, f, dst, at) end
  count(f.channel or '', dst, at)
  if FINAL[dst] and dst ~= 'delivered' then
    failure(id, f.channel or '', dst, detail or '', at)
  end
  if f.ref and dst ~= 'queued' and dst ~= 'sending' then
    -- Every part is answered (or none will be sent): a receipt finds its message by SMSC id,
    -- not by ref. A retry keeps it, as a part that timed out may be on the handset.
    free_ref(key, f, f.channel)
  end
  if FINAL[dst] or dst == 'unknown' then
    -- Settled: drop it from its channel's due index.
    due_drop(f.channel, id)
  end
  return true
end
