--[[
  Authenticates an API key: its record, its account's children (Partner keys) and Redis'
  clock; records last-used at most once per touch_every_ms.
    Input:
      KEYS[1] the key record (key:{sha256})
      ARGV[1] touch every (ms)
    Output:
      {record (flat field/value list), children, now (ms), parent account ('' none)}, or
      false for an unknown key
    Events: none.
]]
--- @include "keys"
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
  children = redis.call('SMEMBERS', C .. 'children:' .. (f.account or ''))
end
local parent = redis.call('HGET', C .. 'acct:' .. (f.account or ''), 'parent') or ''
return {rec, children, now, parent}
