--[[
  Acknowledges and deletes a webhook event in one step, so an event is never both gone and
  undelivered; a dead one is kept in the account's dead letters.
    Input:
      KEYS[1] the account's stream (wh:{account})
      KEYS[2] its dead letters (wh:dead:{account})
      ARGV[1] entry id
      ARGV[2] event id
      ARGV[3] account
      ARGV[4] outcome: 'delivered' or 'dead'
      ARGV[5...] for 'dead': field/value pairs to keep with it
    Output:
      1
    Events:
      "{account} {outcome} {event id}" on wh:notify.
]]
--- @include "keys"
--- @include "bounds"
if ARGV[4] == 'dead' then
  local extra = {}
  for i = 5, #ARGV do extra[#extra + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', DEAD_LETTER_MAXLEN, '*', unpack(extra))
end
redis.call('XACK', KEYS[1], WH_GROUP, ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', P .. 'wh:notify', ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[2])
return 1
