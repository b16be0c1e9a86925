--[[
  Queues dead letters for delivery again: each goes back to the stream of its message's shard
  (wh:{account}:{shard}) as a new event (its age counts from now), in its order.
    Input:
      KEYS[1] the account's dead letters (wh:dead:{account})
      ARGV[1] account
      ARGV[2...] dead letter ids (none: every dead letter)
    Output:
      how many were queued
    Events:
      "{account} replayed {dead letter id}" on wh:notify, one per event.
]]
--- @include "keys"
--- @include "bounds"
--- @include "webhooks"
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
  local f, keep, id = e[2], {}, e[1]
  for j = 1, #f, 2 do
    if not skip[f[j]] then keep[#keep + 1] = f[j]; keep[#keep + 1] = f[j + 1] end
    if f[j] == 'id' then id = f[j + 1] end
  end
  redis.call('XADD', webhook_stream(ARGV[1], id), 'MAXLEN', '~', WH_MAXLEN, '*', unpack(keep))
  redis.call('XDEL', KEYS[1], e[1])
  redis.call('PUBLISH', P .. 'wh:notify', ARGV[1] .. ' replayed ' .. e[1])
end
return #entries
