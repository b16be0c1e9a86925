--[[
  Records a mobile-originated message, or one part of a concatenated one. A part is kept as
  received (a character may straddle two parts); with every part in, the answer is
  '?{dc}:{hex of their octets joined}' for the caller to decode, and the same call again with
  that hex as ``joined`` and the text records it (unless the parts have changed meanwhile: the
  new join is the answer then). The owner is the account the destination is assigned to on
  the channel (numbers:{channel}), else the part's default account, else none (Admins only).
  The configuration it reads is the shard's copy of it (cp:numbers:{channel},
  cp:inbound:{channel}, cp:smpp:accounts; copy_entries.lua), on the messages' slot.
    Input:
      ARGV[1] now (ms)
      ARGV[2] retention (s)
      ARGV[3] the part, JSON: {id, channel, source, destination, text, ref, total, seq, dc,
              hex, default_account}
      ARGV[4] joined: '' on the first call, else the hex the previous answer gave
    Output:
      the MO id once recorded (also when it already was), '' while parts are missing,
      or '?{dc}:{hex}' (decode and call again)
    Events:
      "{id} mo" on the events channel; a 'mo' entry on the owner's webhook stream of the MO
      id's shard, wh:{owner}:{shard}, if the owner set an inbound URL for the channel, and on
      its SMPP stream smpp:rcpt:{owner} if it has SMPP users.
]]
--- @include "keys"
--- @include "bounds"
--- @include "webhooks"
--- @include "copied"
local now, retention, joined = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local m = cjson.decode(ARGV[3])
-- Run again after an unconfirmed write (see NotReplicated): recorded once, listed once.
if redis.call('EXISTS', M .. 'mo:' .. m.id) == 1 then return m.id end
if m.total > 1 then
  local pk = M .. 'mo:parts:' .. m.channel .. ':' .. m.source .. ':' .. m.ref
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
local owner = copied(M .. 'cp:numbers:' .. m.channel, number)
if not owner then owner = m.default_account or '' end
local key = M .. 'mo:' .. m.id
redis.call('HSET', key, 'id', m.id, 'channel', m.channel, 'from', m.source,
           'to', m.destination, 'text', text, 'parts', m.total, 'received_at', now,
           'account', owner)
redis.call('EXPIRE', key, retention)
redis.call('LPUSH', M .. 'mo:list:' .. m.channel, m.id)
redis.call('LTRIM', M .. 'mo:list:' .. m.channel, 0, 9999)
if owner ~= '' then
  -- listed for its owner, and queued for the owner's inbound URL (if it set one for the
  -- channel) in the same script that records it
  redis.call('LPUSH', M .. 'mo:in:' .. owner, m.id)
  redis.call('LTRIM', M .. 'mo:in:' .. owner, 0, 9999)
  if copied(M .. 'cp:inbound:' .. m.channel, owner) then
    redis.call('XADD', webhook_stream(owner, m.id), 'MAXLEN', '~', WH_MAXLEN, '*', 'kind', 'mo',
               'id', m.id, 'channel', m.channel, 'from', m.source, 'to', m.destination,
               'text', text, 'parts', m.total, 'at', now)
  end
  -- for its SMPP clients' receiver binds (gateway/smpp_server/router.py), if it has any users
  if copied(M .. 'cp:smpp:accounts', owner) then
    redis.call('XADD', M .. 'smpp:rcpt:' .. owner, 'MAXLEN', '~', WH_MAXLEN, '*', 'kind', 'mo',
               'id', m.id, 'from', m.source, 'to', m.destination, 'text', text, 'at', now)
  end
end
redis.call('PUBLISH', P .. 'events', m.id .. ' mo')
return m.id
