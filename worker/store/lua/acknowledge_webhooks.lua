--[[
  Acknowledges and deletes webhook events that reached their URL (a 2xx), in one step, so an
  event is never both gone and undelivered; one message on wh:notify for all of them.
    Input:
      KEYS[1] the account's stream (wh:{account})
      ARGV[1] account
      ARGV[2...] (entry id, event id) pairs
    Output:
      how many events
    Events:
      "{account} delivered {event id}" lines on wh:notify, in one message.
]]
--- @include "keys"
local ids, lines = {}, {}
for i = 2, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  lines[#lines + 1] = ARGV[1] .. ' delivered ' .. ARGV[i + 1]
end
redis.call('XACK', KEYS[1], WH_GROUP, unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
redis.call('PUBLISH', P .. 'wh:notify', table.concat(lines, '\n'))
return #ids
