--[[
  Lists API key records, each with its account's 'parent' and 'ownership'.
    Input:
      ARGV[1] key id ('': every key)
    Output:
      a list of records, each a flat field/value list
    Events: none.
]]
--- @include "keys"
local idx
if ARGV[1] ~= '' then
  local h = redis.call('HGET', C .. 'keys', ARGV[1])
  idx = h and {ARGV[1], h} or {}
else
  idx = redis.call('HGETALL', C .. 'keys')
end
local out = {}
for i = 1, #idx, 2 do
  local rec = redis.call('HGETALL', C .. 'key:' .. idx[i + 1])
  if #rec > 0 then
    local account = ''
    for j = 1, #rec, 2 do if rec[j] == 'account' then account = rec[j + 1] end end
    local about = redis.call('HMGET', C .. 'acct:' .. account, 'parent', 'ownership')
    rec[#rec + 1] = 'parent'
    rec[#rec + 1] = about[1] or ''
    rec[#rec + 1] = 'ownership'
    rec[#rec + 1] = about[2] or ''
    out[#out + 1] = rec
  end
end
return out
